"""The user's actions on messages: read/unread, star, labels, Trash and back, delete forever.

Each one locks the threads it touches (threads before messages, like every writer), changes the
messages, then brings the thread summaries and the label index (``ThreadLabel``) up to date by
the difference it made, so a thread list stays one indexed query. Deleting forever recounts the
threads concerned from their remaining messages. Every thread changed gets one domain event in the
same transaction, and its open tabs a ``thread.updated`` (or ``thread.removed``) once it commits.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from mailbox.models import Label, Mailbox, Message, MessageLabel, ThreadLabel
from mailbox.services.conversations import (
    ThreadChange,
    mailbox_own_addresses,
    message_threads_lock,
    thread_changes_record,
    thread_states_apply,
)
from mailsite.models import DomainEvent
from threads.models import Thread
from threads.services import thread_counts_adjust, thread_message_ids_forget

# (message id, thread id, is_read) of the messages an action changed
Changed = list[tuple[int, int, bool]]


@transaction.atomic
def messages_mark_read(*, mailbox: Mailbox, message_ids: list[int], is_read: bool = True, tab: str = "") -> int:
    """Mark messages read (or unread); returns how many changed. ``tab``: the browser tab the change
    was made from, if any (``mailbox.live``)."""
    message_threads_lock(mailbox=mailbox, message_ids=message_ids)
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
    event = DomainEvent.Type.MESSAGES_READ if is_read else DomainEvent.Type.MESSAGES_UNREAD
    _per_thread_record(mailbox, event, [(i, t, is_read) for i, t in changed], tab=tab)
    return len(changed)


@transaction.atomic
def messages_star(*, mailbox: Mailbox, message_ids: list[int], is_starred: bool = True, tab: str = "") -> int:
    """Star (or unstar) messages; returns how many changed. ``tab``: the browser tab the change was
    made from (``mailbox.live``), named in its events."""
    message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    changed = Message.objects.filter(mailbox=mailbox, pk__in=message_ids, is_starred=not is_starred)
    rows = list(changed.values_list("id", "thread_id", "is_read"))
    changed.update(is_starred=is_starred)
    for thread_id, count in Counter(thread_id for _, thread_id, _ in rows).items():
        thread_counts_adjust(thread_id=thread_id, starred=count if is_starred else -count)
    event = DomainEvent.Type.MESSAGES_STARRED if is_starred else DomainEvent.Type.MESSAGES_UNSTARRED
    _per_thread_record(mailbox, event, rows, tab=tab)
    return len(rows)


@transaction.atomic
def messages_label_add(*, mailbox: Mailbox, message_ids: list[int], label: Label) -> int:
    """Put messages under ``label``; returns how many were not there yet."""
    _check_label(mailbox, label)
    message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    added = _labels_add(mailbox, message_ids, label)
    _per_thread_record(mailbox, DomainEvent.Type.MESSAGES_LABELLED, added, label_id=label.id)
    return len(added)


@transaction.atomic
def messages_label_remove(*, mailbox: Mailbox, message_ids: list[int], label: Label) -> int:
    """Take messages out of ``label``; returns how many were under it."""
    _check_label(mailbox, label)
    message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    removed = _labels_remove(mailbox, message_ids, label)
    _per_thread_record(mailbox, DomainEvent.Type.MESSAGES_UNLABELLED, removed, label_id=label.id)
    return len(removed)


def _check_label(mailbox: Mailbox, label: Label) -> None:
    if label.mailbox_id != mailbox.id:
        raise ValidationError("No such label in this mailbox.")


def _labels_add(mailbox: Mailbox, message_ids: Iterable[int], label: Label) -> Changed:
    """Label the messages not under ``label`` yet (threads locked); returns them."""
    added = list(
        Message.objects.filter(mailbox=mailbox, pk__in=message_ids)
        .exclude(message_labels__label=label)
        .values_list("id", "thread_id", "is_read")
    )
    MessageLabel.objects.bulk_create(MessageLabel(mailbox=mailbox, message_id=i, label=label) for i, _, _ in added)
    _thread_labels_shift(mailbox, label, added, step=1)
    return added


def _labels_remove(mailbox: Mailbox, message_ids: Iterable[int], label: Label) -> Changed:
    """Unlabel the messages under ``label`` (threads locked); returns them."""
    links = MessageLabel.objects.filter(mailbox=mailbox, label=label, message_id__in=message_ids)
    removed = list(links.values_list("message_id", "message__thread_id", "message__is_read"))
    links.delete()
    _thread_labels_shift(mailbox, label, removed, step=-1)
    return removed


def _thread_labels_shift(mailbox: Mailbox, label: Label, rows: Changed, *, step: int) -> None:
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


def _per_thread_record(mailbox: Mailbox, event_type: str, rows: Changed, tab: str = "", **details: object) -> None:
    """One event per thread the rows (message id, thread id, is_read) belong to, naming its messages."""
    by_thread: dict[int, list[int]] = defaultdict(list)
    for message_id, thread_id, _ in rows:
        by_thread[thread_id].append(message_id)
    changes = [ThreadChange(t, {"message_ids": sorted(ids), **details}) for t, ids in by_thread.items()]
    thread_changes_record(mailbox_id=mailbox.id, event_type=event_type, changes=changes, tab=tab)


@transaction.atomic
def messages_trash(*, mailbox: Mailbox, message_ids: list[int]) -> int:
    """Move messages to Trash: the other system folders (Inbox, Sent, Spam…) are taken off, Trash
    put on. User labels stay, so Restore brings them back; their lists hide a thread wholly in
    Trash meanwhile (``selectors``). Returns how many moved."""
    trash = Label.objects.get(mailbox=mailbox, role=Label.Role.TRASH)
    message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    others = MessageLabel.objects.filter(mailbox=mailbox, message_id__in=message_ids).exclude(label=trash)
    others = others.exclude(label__role="")
    unlabelled: Changed = []
    for label in Label.objects.filter(pk__in=others.values("label_id")).order_by("pk"):
        unlabelled += _labels_remove(mailbox, message_ids, label)
    added = _labels_add(mailbox, message_ids, trash)
    _per_thread_record(mailbox, DomainEvent.Type.MESSAGES_TRASHED, list(dict.fromkeys(added + unlabelled)))
    return len(added)


@transaction.atomic
def messages_restore(*, mailbox: Mailbox, message_ids: list[int]) -> int:
    """Take messages out of Trash: back to the Inbox, or to Sent for those the mailbox sent.
    Messages not in Trash are left alone. Returns how many were restored."""
    trash = Label.objects.get(mailbox=mailbox, role=Label.Role.TRASH)
    message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    restored = _labels_remove(mailbox, message_ids, trash)
    own = mailbox_own_addresses(mailbox_id=mailbox.id)
    from_self = set(
        Message.objects.filter(pk__in=[i for i, _, _ in restored], from_address__in=own).values_list("id", flat=True)
    )
    for role, ids in (
        (Label.Role.INBOX, [i for i, _, _ in restored if i not in from_self]),
        (Label.Role.SENT, from_self),
    ):
        if ids:
            _labels_add(mailbox, ids, Label.objects.get(mailbox=mailbox, role=role))
    _per_thread_record(mailbox, DomainEvent.Type.MESSAGES_RESTORED, restored)
    return len(restored)


@transaction.atomic
def messages_delete(*, mailbox: Mailbox, message_ids: list[int]) -> int:
    """Delete messages forever; their threads are recounted, and deleted when left empty.

    The raw bytes stay in blob storage (shared, content-addressed). Returns how many were deleted.
    """
    message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    doomed = Message.objects.filter(mailbox=mailbox, pk__in=message_ids)
    rows = list(doomed.values_list("id", "thread_id", "message_id"))
    doomed.delete()
    header_ids = {header_id for _, _, header_id in rows}
    remaining = set(
        Message.objects.filter(mailbox=mailbox, message_id__in=header_ids).values_list("message_id", flat=True)
    )
    thread_message_ids_forget(mailbox_id=mailbox.id, message_ids=sorted(header_ids - remaining))
    by_thread: dict[int, list[int]] = defaultdict(list)
    for message_id, thread_id, _ in rows:
        by_thread[thread_id].append(message_id)
    emptied = set(thread_states_apply(mailbox_id=mailbox.id, thread_ids=list(by_thread)))
    changes = [ThreadChange(t, {"message_ids": sorted(ids)}, removed=t in emptied) for t, ids in by_thread.items()]
    thread_changes_record(mailbox_id=mailbox.id, event_type=DomainEvent.Type.MESSAGES_DELETED, changes=changes)
    return len(rows)
