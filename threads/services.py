"""Writes of the threads app: placing a message in a thread and keeping the thread's summary.

This is the header-only resolver (In-Reply-To, then References, nearest ancestor first); the
subject and participant fallbacks, merges and splits build on the same entry points.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from threads.models import Thread, ThreadMessageId
from threads.subjects import normalize_subject

MAX_DISPLAY_PARTICIPANTS = 10


@dataclass(frozen=True)
class ThreadPlacement:
    thread: Thread
    reason: str  # "reference" or "new", as Message.ThreadReason


@dataclass(frozen=True)
class SummaryDelta:
    """What one new message adds to its thread's summary."""

    date: datetime
    is_read: bool
    is_starred: bool
    has_attachments: bool
    snippet: str
    sender_name: str
    sender_address: str


def _ancestor_ids(*, in_reply_to: str, references: list[str]) -> list[str]:
    """Candidate parent ids, nearest first: In-Reply-To, then References from last to first."""
    ordered = [in_reply_to] if in_reply_to else []
    ordered += reversed(references)
    return list(dict.fromkeys(i for i in ordered if i))


@transaction.atomic
def thread_place_message(
    *,
    mailbox_id: int,
    message_id: str,
    in_reply_to: str,
    references: list[str],
    subject: str,
    list_id: str = "",
) -> ThreadPlacement:
    """Find the thread for a new message (or start one) and record its ids for later replies.

    Side effect: the message's own id and every id it references are mapped to the thread.
    """
    ancestors = _ancestor_ids(in_reply_to=in_reply_to, references=references)
    known = dict(
        ThreadMessageId.objects.filter(mailbox_id=mailbox_id, message_id__in=[message_id, *ancestors]).values_list(
            "message_id", "thread_id"
        )
    )
    thread_id = next((known[i] for i in [message_id, *ancestors] if i in known), None)
    if thread_id is not None:
        placement = ThreadPlacement(thread=Thread.objects.get(pk=thread_id), reason="reference")
    else:
        thread = Thread(
            mailbox_id=mailbox_id, subject=subject, normalized_subject=normalize_subject(subject), list_id=list_id
        )
        thread.full_clean(validate_constraints=False)  # PostgreSQL enforces them on insert
        thread.save()
        placement = ThreadPlacement(thread=thread, reason="new")
    _record_message_ids(mailbox_id=mailbox_id, thread=placement.thread, own_id=message_id, referenced=ancestors)
    return placement


def _record_message_ids(*, mailbox_id: int, thread: Thread, own_id: str, referenced: list[str]) -> None:
    rows = [ThreadMessageId(mailbox_id=mailbox_id, message_id=i, thread=thread) for i in referenced if i != own_id]
    rows.append(ThreadMessageId(mailbox_id=mailbox_id, message_id=own_id, thread=thread, seen=True))
    ThreadMessageId.objects.bulk_create(rows, ignore_conflicts=True)
    ThreadMessageId.objects.filter(mailbox_id=mailbox_id, message_id=own_id, seen=False).update(seen=True)


@transaction.atomic
def thread_add_message_summary(*, thread_id: int, delta: SummaryDelta) -> Thread:
    """Fold one new message into the thread's summary, under a row lock so concurrent adds both count."""
    thread = Thread.objects.select_for_update().get(pk=thread_id)
    if thread.last_message_at is None or delta.date >= thread.last_message_at:
        thread.last_message_at = delta.date
        thread.snippet = delta.snippet
    if thread.first_message_at is None or delta.date < thread.first_message_at:
        thread.first_message_at = delta.date
    thread.message_count += 1
    thread.unread_count += 0 if delta.is_read else 1
    thread.starred_count += 1 if delta.is_starred else 0
    thread.has_attachments = thread.has_attachments or delta.has_attachments
    thread.participants = _merged_participants(thread.participants, delta)
    thread.participant_addresses = sorted({*thread.participant_addresses, delta.sender_address} - {""})
    thread.full_clean(validate_constraints=False)  # PostgreSQL enforces them on update
    thread.save(update_fields=_SUMMARY_FIELDS)
    return thread


_SUMMARY_FIELDS = [
    "last_message_at",
    "first_message_at",
    "snippet",
    "message_count",
    "unread_count",
    "starred_count",
    "has_attachments",
    "participants",
    "participant_addresses",
    "updated_at",
]


def _merged_participants(current: list[dict], delta: SummaryDelta) -> list[dict]:
    """Senders in order of first appearance, capped for display."""
    if not delta.sender_address or any(p["address"] == delta.sender_address for p in current):
        return current
    return [*current, {"name": delta.sender_name, "address": delta.sender_address}][:MAX_DISPLAY_PARTICIPANTS]
