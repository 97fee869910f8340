"""The user's actions on messages: read/unread, star, labels, Trash, delete forever.

Each one locks the threads it touches (threads before messages, like every writer), changes the
messages, then brings the thread summaries and the label index (``ThreadLabel``) up to date by
the difference it made, so a thread list stays one indexed query. Deleting forever recounts the
threads concerned from their remaining messages. Open tabs hear of the change on commit.
"""

from collections import Counter

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from mailbox.models import Label, Mailbox, Message, MessageLabel, ThreadLabel
from mailbox.services.conversations import message_threads_lock, thread_states_apply, threads_changed_notify
from threads.models import Thread
from threads.services import thread_counts_adjust, thread_message_ids_forget


@transaction.atomic
def messages_mark_read(*, mailbox: Mailbox, message_ids: list[int], is_read: bool = True) -> int:
    """Mark messages read (or unread); returns how many changed."""
    thread_ids = message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    changed = list(
        Message.objects.filter(mailbox=mailbox, pk__in=message_ids, is_read=not is_read).values_list("id", "thread_id")
    )
    if not changed:
        return 0
    ids = [message_id for message_id, _ in changed]
    Message.objects.filter(pk__in=ids).update(is_read=is_read)
    step = -1 if is_read else 1
    for thread_id, count in Counter(thread_id for _, thread_id in changed).items():
        thread_counts_adjust(thread_id=thread_id, unread=step * count)
    labelled = MessageLabel.objects.filter(mailbox=mailbox, message_id__in=ids)
    for (thread_id, label_id), count in Counter(labelled.values_list("message__thread_id", "label_id")).items():
        ThreadLabel.objects.filter(mailbox=mailbox, thread_id=thread_id, label_id=label_id).update(
            unread_count=F("unread_count") + step * count
        )
    threads_changed_notify(mailbox_id=mailbox.id, updated=thread_ids)
    return len(changed)


@transaction.atomic
def messages_star(*, mailbox: Mailbox, message_ids: list[int], is_starred: bool = True) -> int:
    """Star (or unstar) messages; returns how many changed."""
    thread_ids = message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    changed = Message.objects.filter(mailbox=mailbox, pk__in=message_ids, is_starred=not is_starred)
    per_thread = Counter(changed.values_list("thread_id", flat=True))
    changed.update(is_starred=is_starred)
    for thread_id, count in per_thread.items():
        thread_counts_adjust(thread_id=thread_id, starred=count if is_starred else -count)
    threads_changed_notify(mailbox_id=mailbox.id, updated=thread_ids)
    return sum(per_thread.values())


@transaction.atomic
def messages_label_add(*, mailbox: Mailbox, message_ids: list[int], label: Label) -> int:
    """Put messages under ``label``; returns how many were not there yet."""
    _check_label(mailbox, label)
    thread_ids = message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    added = list(
        Message.objects.filter(mailbox=mailbox, pk__in=message_ids)
        .exclude(message_labels__label=label)
        .values_list("id", "thread_id", "is_read")
    )
    MessageLabel.objects.bulk_create(MessageLabel(mailbox=mailbox, message_id=i, label=label) for i, _, _ in added)
    _thread_labels_shift(mailbox, label, added, step=1)
    threads_changed_notify(mailbox_id=mailbox.id, updated=thread_ids)
    return len(added)


@transaction.atomic
def messages_label_remove(*, mailbox: Mailbox, message_ids: list[int], label: Label) -> int:
    """Take messages out of ``label``; returns how many were under it."""
    _check_label(mailbox, label)
    thread_ids = message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    links = MessageLabel.objects.filter(mailbox=mailbox, label=label, message_id__in=message_ids)
    removed = list(links.values_list("message_id", "message__thread_id", "message__is_read"))
    links.delete()
    _thread_labels_shift(mailbox, label, removed, step=-1)
    threads_changed_notify(mailbox_id=mailbox.id, updated=thread_ids)
    return len(removed)


def _check_label(mailbox: Mailbox, label: Label) -> None:
    if label.mailbox_id != mailbox.id:
        raise ValidationError("No such label in this mailbox.")


def _thread_labels_shift(mailbox: Mailbox, label: Label, rows: list[tuple[int, int, bool]], *, step: int) -> None:
    """Count messages (id, thread id, is_read) in or out of the label's thread rows; threads locked.

    A row appears with its thread's first message under the label and goes with its last one.
    """
    counts = Counter(thread_id for _, thread_id, _ in rows)
    unread = Counter(thread_id for _, thread_id, is_read in rows if not is_read)
    last_at = dict(Thread.objects.filter(pk__in=list(counts)).values_list("id", "last_message_at"))
    existing = {
        row.thread_id: row for row in ThreadLabel.objects.filter(mailbox=mailbox, label=label, thread_id__in=counts)
    }
    for thread_id, count in counts.items():
        row = existing.get(thread_id) or ThreadLabel(mailbox=mailbox, label=label, thread_id=thread_id)
        row.message_count += step * count
        row.unread_count += step * unread[thread_id]
        row.last_message_at = last_at[thread_id]
        if row.message_count:
            row.save()
        elif row.pk is not None:
            row.delete()


@transaction.atomic
def messages_trash(*, mailbox: Mailbox, message_ids: list[int]) -> int:
    """Move messages to Trash: every other label is taken off, Trash put on. Returns how many moved."""
    trash = Label.objects.get(mailbox=mailbox, role=Label.Role.TRASH)
    message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    others = MessageLabel.objects.filter(mailbox=mailbox, message_id__in=message_ids).exclude(label=trash)
    for label in Label.objects.filter(pk__in=others.values("label_id")).order_by("pk"):
        messages_label_remove(mailbox=mailbox, message_ids=message_ids, label=label)
    return messages_label_add(mailbox=mailbox, message_ids=message_ids, label=trash)


@transaction.atomic
def messages_delete(*, mailbox: Mailbox, message_ids: list[int]) -> int:
    """Delete messages forever; their threads are recounted, and deleted when left empty.

    The raw bytes stay in blob storage (shared, content-addressed). Returns how many were deleted.
    """
    thread_ids = message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    doomed = Message.objects.filter(mailbox=mailbox, pk__in=message_ids)
    header_ids = set(doomed.values_list("message_id", flat=True))
    deleted = doomed.count()
    doomed.delete()
    remaining = set(
        Message.objects.filter(mailbox=mailbox, message_id__in=header_ids).values_list("message_id", flat=True)
    )
    thread_message_ids_forget(mailbox_id=mailbox.id, message_ids=sorted(header_ids - remaining))
    emptied = thread_states_apply(mailbox_id=mailbox.id, thread_ids=thread_ids)
    threads_changed_notify(mailbox_id=mailbox.id, updated=set(thread_ids) - set(emptied), removed=emptied)
    return deleted
