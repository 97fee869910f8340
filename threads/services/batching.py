"""Placing a batch of messages with a few statements for the whole batch instead of several per message.

The resolver's decisions do not change: its functions read and write through the data functions of
this package (``known_ids_fetch``, ``threads_lock``, ``thread_create``, ``message_ids_record``,
``thread_add_message_summary`` …), and while a ``ThreadBatch`` is active (``thread_batch``) those
answer from the batch and keep its writes until ``flush``:

- the Message-ID map of every id the batch names, read with one ``= ANY`` query, kept current as
  messages are placed; new rows inserted in one statement;
- the threads the batch touches, locked (``FOR UPDATE``) whole when first read, their summaries
  folded in memory with the same rules as ``thread_add_message_summary`` and written with one
  UPDATE per flush; new threads take ids from the sequence and are inserted in one statement;
- the conversation locks of every id and subject key, taken in one statement up front.

Map rows carry their ``subject_anchor`` (a provisional subject join): recorded rows take the anchor the
resolver computed, an arrived placeholder keeps its own, as ``_RECORD_IDS_SQL`` does. A subject look-up
of thread rows reads the database for the threads the batch does not hold and the batch's memory for
those it holds (``threads_held``), without flushing: the corpora's replies without References would
otherwise flush several times per batch. What the batch cannot answer from memory (a merge, confirming,
moving or undoing subject joins) flushes first, so the database holds exactly what a message-at-a-time
run would have written by then. The caller (the mailbox's batched delivery) must hold the mailbox's delivery lock
exclusively: no other placement into the mailbox runs meanwhile, so nothing but the batch changes
what it remembers.
"""

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from mailsite.rows import rows_insert, rows_insert_unless_present
from threads.models import Thread, ThreadMessageId

# A row of the Message-ID map: (message_id, thread_id, seen, sender, is_bulk, subject_anchor).
KnownRow = tuple[str, int, bool, str, bool, str]

# Raw SQL on purpose: every delivery runs it, and the ORM's query building would cost more than the
# index look-up itself (resolution has a 5 ms budget).
_KNOWN_IDS_SQL = (
    "SELECT message_id, thread_id, seen, sender, is_bulk, subject_anchor "
    "FROM threads_threadmessageid WHERE mailbox_id = %s AND message_id = ANY(%s)"
)
_FRAGMENT_KEYS_SQL = (
    "SELECT DISTINCT normalized_subject FROM threads_thread "
    "WHERE mailbox_id = %s AND is_fragment AND normalized_subject = ANY(%s)"
)
THREAD_IDS_AT_ONCE = 64  # unused ones are a gap in the sequence, nothing more
_THREAD_IDS_SQL = "SELECT nextval(pg_get_serial_sequence('threads_thread', 'id')) FROM generate_series(1, %s)"
_SUMMARY_UPDATE_SQL = """
UPDATE threads_thread AS t SET
    message_count = v.message_count, unread_count = v.unread_count, starred_count = v.starred_count,
    has_attachments = v.has_attachments, snippet = v.snippet,
    first_message_at = v.first_message_at, last_message_at = v.last_message_at,
    participants = v.participants, participant_addresses = v.participant_addresses,
    correspondents = v.correspondents, updated_at = %s
FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::int[], %s::bool[], %s::text[], %s::timestamptz[],
            %s::timestamptz[], %s::jsonb[], %s::jsonb[], %s::jsonb[])
    AS v(id, message_count, unread_count, starred_count, has_attachments, snippet, first_message_at,
         last_message_at, participants, participant_addresses, correspondents)
WHERE t.id = v.id
"""
_SEEN_UPDATE_SQL = """
UPDATE threads_threadmessageid AS m SET seen = true, sender = v.sender, is_bulk = v.is_bulk
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bool[]) AS v(mailbox_id, message_id, sender, is_bulk)
WHERE m.mailbox_id = v.mailbox_id AND m.message_id = v.message_id AND NOT m.seen
"""


@dataclass
class ThreadBatch:
    """What a batch of placements has read and written, by mailbox; see the module's docstring."""

    known: dict[tuple[int, str], KnownRow | None] = field(default_factory=dict)  # None: not in the map
    threads: dict[int, Thread] = field(default_factory=dict)  # locked, whole, current
    created: dict[int, Thread] = field(default_factory=dict)  # not inserted yet
    dirty: set[int] = field(default_factory=set)  # summary changed since read or flushed
    new_rows: dict[tuple[int, str], ThreadMessageId] = field(default_factory=dict)
    seen: dict[tuple[int, str], tuple[str, bool]] = field(default_factory=dict)  # placeholders now arrived
    lock_keys: set[int] = field(default_factory=set)
    fragment_keys: dict[int, set[str]] = field(default_factory=dict)  # subjects of fragments, when read
    spare_ids: list[int] = field(default_factory=list)
    # The caller's flush (its own rows after ours); the batch calls it before a read it cannot answer.
    flush_hook: Callable[[], None] | None = None

    def prepare(self, *, mailbox_id: int, message_ids: Iterable[str], subject_keys: Iterable[str]) -> None:
        """Read, for one mailbox, the map rows of ``message_ids`` (and lock their threads) and which
        ``subject_keys`` have fragments."""
        known = self.known_fetch(mailbox_id, message_ids)
        self.threads_lock(mailbox_id, {row[1] for row in known.values()})
        keys = sorted(set(subject_keys))
        with connection.cursor() as cursor:
            cursor.execute(_FRAGMENT_KEYS_SQL, [mailbox_id, keys])
            self.fragment_keys.setdefault(mailbox_id, set()).update(row[0] for row in cursor.fetchall())

    def known_fetch(self, mailbox_id: int, message_ids: Iterable[str]) -> dict[str, KnownRow]:
        ids = list(dict.fromkeys(message_ids))
        missing = [i for i in ids if (mailbox_id, i) not in self.known]
        if missing:
            with connection.cursor() as cursor:
                cursor.execute(_KNOWN_IDS_SQL, [mailbox_id, missing])
                found = {row[0]: tuple(row) for row in cursor.fetchall()}
            self.known.update({(mailbox_id, i): found.get(i) for i in missing})
        return {i: row for i in ids if (row := self.known[(mailbox_id, i)]) is not None}

    def threads_lock(self, mailbox_id: int, thread_ids: Iterable[int]) -> dict[int, Thread]:
        wanted = set(thread_ids)
        missing = sorted(wanted - set(self.threads))
        if missing:
            rows = Thread.objects.select_for_update().filter(mailbox_id=mailbox_id, pk__in=missing).order_by("pk")
            self.threads.update({thread.pk: thread for thread in rows})
            self._vanished(mailbox_id, set(missing) - set(self.threads))
        found = (self.threads.get(i) for i in sorted(wanted))
        return {thread.pk: thread for thread in found if thread is not None and thread.mailbox_id == mailbox_id}

    def _vanished(self, mailbox_id: int, thread_ids: set[int]) -> None:
        """Threads merged away or deleted since the batch read the map: read their ids again when
        asked (the resolver looks again when a thread it found is gone)."""
        if thread_ids:
            stale = [
                k for k, row in self.known.items() if row is not None and k[0] == mailbox_id and row[1] in thread_ids
            ]
            for key in stale:
                del self.known[key]

    def thread_locked(self, thread_id: int) -> Thread:
        """One thread the caller knows exists, as the batch holds it."""
        if thread_id not in self.threads:
            self.threads[thread_id] = Thread.objects.select_for_update().get(pk=thread_id)
        return self.threads[thread_id]

    def thread_add(self, thread: Thread) -> Thread:
        """A new thread: an id from the sequence now, the row at the next flush."""
        if not self.spare_ids:
            with connection.cursor() as cursor:
                cursor.execute(_THREAD_IDS_SQL, [THREAD_IDS_AT_ONCE])
                self.spare_ids = [row[0] for row in cursor.fetchall()][::-1]
        thread.pk = self.spare_ids.pop()
        thread.created_at = thread.updated_at = timezone.now()
        self.threads[thread.pk] = self.created[thread.pk] = thread
        if thread.is_fragment:
            self.fragment_keys.setdefault(thread.mailbox_id, set()).add(thread.normalized_subject)
        return thread

    def ids_record(self, rows: list[ThreadMessageId], *, own: ThreadMessageId, own_known: bool) -> None:
        """Map the followed ids (where not mapped yet) and the message's own id to its thread."""
        for row in [*rows, own]:
            key = (row.mailbox_id, row.message_id)
            if self.known.get(key) is None:
                self.known[key] = (row.message_id, row.thread_id, row.seen, row.sender, row.is_bulk, row.subject_anchor)
                self.new_rows[key] = row
        key = (own.mailbox_id, own.message_id)
        current = self.known[key]
        if own_known and not current[2]:  # a placeholder until now: the message has arrived (its anchor stays)
            self.known[key] = (current[0], current[1], True, own.sender, own.is_bulk, current[5])
            if key in self.new_rows:
                self.new_rows[key].seen, self.new_rows[key].sender, self.new_rows[key].is_bulk = (
                    True,
                    own.sender,
                    own.is_bulk,
                )
            else:
                self.seen[key] = (own.sender, own.is_bulk)

    def threads_held(self, mailbox_id: int) -> list[Thread]:
        """The mailbox's threads the batch holds: current here, stale or not yet inserted in the database."""
        return [thread for thread in self.threads.values() if thread.mailbox_id == mailbox_id]

    def fragments_possible(self, mailbox_id: int, subject_keys: Iterable[str]) -> bool:
        keys = self.fragment_keys.get(mailbox_id)
        return keys is None or not keys.isdisjoint(subject_keys)

    def flush(self) -> None:
        """Write what the batch holds: the caller's rows too, when it gave a hook."""
        if self.flush_hook is not None:
            self.flush_hook()
        else:
            self.flush_threads()

    def flush_threads(self) -> None:
        if self.created:
            # Ids drawn from the sequence already; one short statement (bulk_create prepares each value).
            rows_insert(objs=list(self.created.values()))
            self.dirty -= set(self.created)
            self.created.clear()
        if self.dirty:
            _summaries_write([self.threads[i] for i in sorted(self.dirty) if i in self.threads])
            self.dirty.clear()
        if self.new_rows:
            rows_insert_unless_present(objs=list(self.new_rows.values()))
            self.new_rows.clear()
        if self.seen:
            keys = list(self.seen)
            with connection.cursor() as cursor:
                cursor.execute(
                    _SEEN_UPDATE_SQL,
                    [[k[0] for k in keys], [k[1] for k in keys], *map(list, zip(*self.seen.values(), strict=True))],
                )
            self.seen.clear()

    def absorbed(self, *, mailbox_id: int, into_id: int, thread_ids: list[int]) -> None:
        """``thread_ids`` were merged into ``into_id`` in the database: follow in memory."""
        gone = set(thread_ids)
        for key, row in self.known.items():
            if row is not None and key[0] == mailbox_id and row[1] in gone:
                self.known[key] = (row[0], into_id, *row[2:])
        self.forget(gone | {into_id})

    def subject_joins_settled(
        self, *, mailbox_id: int, confirmed: set[str], moved: set[str], into_id: int, inherited: str
    ) -> None:
        """The map rows of these anchors were confirmed (anchor cleared) or moved to ``into_id`` (anchor
        ``inherited``) in the database, confirmed first: follow in memory."""
        for key, row in self.known.items():
            if row is None or key[0] != mailbox_id or not row[5]:
                continue
            if row[5] in confirmed:
                self.known[key] = (*row[:5], "")
            elif row[5] in moved:
                self.known[key] = (row[0], into_id, *row[2:5], inherited)

    def threads_deleted(self, mailbox_id: int, thread_ids: Iterable[int]) -> None:
        """Threads deleted in the database, their map rows with them: read those ids again when asked."""
        gone = set(thread_ids)
        self.forget(gone)
        self.known_forget(mailbox_id, gone)

    def known_forget(self, mailbox_id: int, thread_ids: Iterable[int]) -> None:
        """Map rows of these threads changed in the database: read them again when asked."""
        self._vanished(mailbox_id, set(thread_ids))

    def forget(self, thread_ids: Iterable[int]) -> None:
        """Threads written (or deleted) directly: read them again when next needed (still locked)."""
        for thread_id in thread_ids:
            self.threads.pop(thread_id, None)
            self.dirty.discard(thread_id)


def _summaries_write(threads: list[Thread]) -> None:
    columns = [
        [t.pk for t in threads],
        [t.message_count for t in threads],
        [t.unread_count for t in threads],
        [t.starred_count for t in threads],
        [t.has_attachments for t in threads],
        [t.snippet for t in threads],
        [t.first_message_at for t in threads],
        [t.last_message_at for t in threads],
        [json.dumps(t.participants) for t in threads],
        [json.dumps(t.participant_addresses) for t in threads],
        [json.dumps(t.correspondents) for t in threads],
    ]
    with connection.cursor() as cursor:
        cursor.execute(_SUMMARY_UPDATE_SQL, [timezone.now(), *columns])


_CURRENT: ContextVar[ThreadBatch | None] = ContextVar("thread_batch", default=None)


def batch_current() -> ThreadBatch | None:
    """The batch of placements under way in this context, if any."""
    return _CURRENT.get()


def known_ids_fetch(*, mailbox_id: int, message_ids: list[str]) -> dict[str, KnownRow]:
    """The Message-ID map's rows for these ids, by id (absent when not mapped)."""
    batch = _CURRENT.get()
    if batch is not None:
        return batch.known_fetch(mailbox_id, message_ids)
    # Raw SQL on purpose: every delivery runs it, and the ORM's query building would cost more than
    # the index look-up itself.
    with connection.cursor() as cursor:
        cursor.execute(_KNOWN_IDS_SQL, [mailbox_id, message_ids])
        return {row[0]: tuple(row) for row in cursor.fetchall()}


@contextmanager
def thread_batch(*, flush_hook: Callable[[], None] | None = None) -> Iterator[ThreadBatch]:
    """Place messages as a batch until the block ends; the caller flushes before it commits.

    Call inside the transaction, holding the delivery locks of every mailbox the batch places into
    exclusively. ``flush_hook`` is the caller's own flush, which must call ``flush_threads`` first.
    """
    batch = ThreadBatch(flush_hook=flush_hook)
    token = _CURRENT.set(batch)
    try:
        yield batch
    finally:
        _CURRENT.reset(token)
