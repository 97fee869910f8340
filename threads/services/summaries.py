"""Thread summaries: folded in one message at a time, or set whole from a recount by the caller.

The summary is what a thread list shows (counts, senders, latest snippet, dates, attachment
icon) plus the correspondents the resolver's participant test reads. Every rule here is one an
incremental add and a recount from the messages reproduce exactly, so the two never drift.
"""

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F

from threads.models import Thread
from threads.services.batching import batch_current

MAX_DISPLAY_PARTICIPANTS = 10
MAX_CORRESPONDENTS = 200


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
    correspondents: tuple[str, ...] = ()


@dataclass(frozen=True)
class ThreadSummary:
    """A whole summary, as recounted from a thread's messages (or read from its row)."""

    message_count: int = 0
    unread_count: int = 0
    starred_count: int = 0
    has_attachments: bool = False
    snippet: str = ""
    first_message_at: datetime | None = None
    last_message_at: datetime | None = None
    participants: list[dict] = field(default_factory=list)
    participant_addresses: list[str] = field(default_factory=list)
    correspondents: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, thread: Thread) -> "ThreadSummary":
        return cls(**{name: getattr(thread, name) for name in SUMMARY_FIELDS})

    def differences(self, other: "ThreadSummary") -> list[str]:
        """Names of the fields whose values differ."""
        mine, theirs = asdict(self), asdict(other)
        return [name for name in SUMMARY_FIELDS if mine[name] != theirs[name]]


SUMMARY_FIELDS = tuple(ThreadSummary.__dataclass_fields__)


def participants_add(current: list[dict], *, name: str, address: str) -> list[dict]:
    """Senders for display: the first one, then the others by their latest message (a sender
    writing again moves to the end), each with the name of their first message; capped to the
    first and the latest, so a thread list can name the first sender and the last repliers."""
    if not address or (current and current[0]["address"] == address):
        return current
    entry = next((p for p in current if p["address"] == address), {"name": name, "address": address})
    moved = [*(p for p in current if p["address"] != address), entry]
    return (
        [moved[0], *moved[len(moved) - MAX_DISPLAY_PARTICIPANTS + 1 :]]
        if len(moved) > MAX_DISPLAY_PARTICIPANTS
        else moved
    )


def correspondents_capped(addresses: Iterable[str]) -> list[str]:
    """The sorted set, cut to the alphabetically first few: adding one address to a capped set
    gives the same result as capping the full set, so increments and recounts agree."""
    return sorted({a for a in addresses if a})[:MAX_CORRESPONDENTS]


@transaction.atomic(savepoint=False)
def thread_add_message_summary(*, thread_id: int, delta: SummaryDelta) -> Thread:
    """Fold one new message (the newest row of the thread) into its summary, under the thread's row lock.

    In a batch (``thread_batch``) the thread is the batch's locked row, folded in memory and written
    with the batch's other summaries in one statement when it flushes.
    """
    batch = batch_current()
    if batch is not None:
        thread = batch.thread_locked(thread_id)
        summary_fold(thread, delta)
        batch.dirty.add(thread_id)
        return thread
    thread = Thread.objects.select_for_update().get(pk=thread_id)
    summary_fold(thread, delta)
    thread.full_clean(validate_constraints=False)  # PostgreSQL enforces them on update
    thread.save(update_fields=[*SUMMARY_FIELDS, "updated_at"])
    return thread


def summary_fold(thread: Thread, delta: SummaryDelta) -> None:
    """The summary rules for one new message, applied to ``thread``'s fields in memory."""
    if thread.last_message_at is None or delta.date >= thread.last_message_at:
        thread.last_message_at = delta.date
        thread.snippet = delta.snippet
    if thread.first_message_at is None or delta.date < thread.first_message_at:
        thread.first_message_at = delta.date
    thread.message_count += 1
    thread.unread_count += 0 if delta.is_read else 1
    thread.starred_count += 1 if delta.is_starred else 0
    thread.has_attachments = thread.has_attachments or delta.has_attachments
    thread.participants = participants_add(thread.participants, name=delta.sender_name, address=delta.sender_address)
    thread.participant_addresses = sorted({*thread.participant_addresses, delta.sender_address} - {""})
    thread.correspondents = correspondents_capped([*thread.correspondents, *delta.correspondents])


@transaction.atomic(savepoint=False)
def thread_summary_set(*, thread_id: int, summary: ThreadSummary) -> Thread:
    """Replace a thread's summary with one recounted from its messages (after a merge, split or delete)."""
    thread = Thread.objects.select_for_update().get(pk=thread_id)
    for name in SUMMARY_FIELDS:
        setattr(thread, name, getattr(summary, name))
    thread.full_clean(validate_constraints=False)
    thread.save(update_fields=[*SUMMARY_FIELDS, "updated_at"])
    batch = batch_current()
    if batch is not None:
        batch.forget([thread_id])  # written past the batch: read again when next needed
    return thread


@transaction.atomic(savepoint=False)
def thread_counts_adjust(*, thread_id: int, unread: int = 0, starred: int = 0) -> None:
    """Shift the unread and starred counts (read/unread, star/unstar); the database keeps them within bounds."""
    Thread.objects.filter(pk=thread_id).update(
        unread_count=F("unread_count") + unread, starred_count=F("starred_count") + starred
    )
