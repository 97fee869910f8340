"""What placing a message reads before it decides, in one round trip.

Every placement takes its conversation's advisory locks, then reads the Message-ID map rows of its
ids, locks the threads they lead to and, for a message that may join by subject or start a
conversation, reads the threads of its subject. Outside a batch that is one call of the database
function ``threads_placement_read`` (migration 0007): its statements run one after another on the
server, each with a fresh snapshot, so the reads see everything a placement that held the locks
before committed, as separate statements would, without a round trip each. In a batch
(``thread_batch``), the batch answers from memory as before.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from django.db import connection

from threads.models import Thread
from threads.services.batching import KnownRow, batch_current, known_ids_fetch
from threads.services.locking import conversation_lock, conversation_lock_keys, locked_thread


class Candidate(NamedTuple):
    """A thread as the subject rules read it."""

    pk: int
    normalized_subject: str
    list_id: str
    message_count: int
    first_message_at: datetime | None
    last_message_at: datetime
    correspondents: list[str]


@dataclass(frozen=True)
class SubjectQuery:
    """Threads under these subject keys active since ``since``, at most ``limit``, earliest first;
    fragments only (not arranged by the user) when ``fragments_only``."""

    keys: list[str]
    since: datetime
    fragments_only: bool
    limit: int


@dataclass(frozen=True)
class PlacementRead:
    known: dict[str, KnownRow]  # the map rows of the ids asked for, by id
    # The threads of those rows, row-locked, as ``threads_lock`` returns them; empty in a batch (it locks its own).
    locked: dict[int, Thread] = field(default_factory=dict)
    subject_query: SubjectQuery | None = None  # what ``candidates`` answers, if it was read
    candidates: list[Candidate] = field(default_factory=list)

    def candidates_for(self, query: SubjectQuery) -> list[Candidate] | None:
        """The candidates read for ``query``, or ``None`` when they were not read."""
        return self.candidates if self.subject_query == query else None


_READ_SQL = "SELECT * FROM threads_placement_read(%s, %s, %s, %s, %s, %s, %s)"
_NO_SUBJECT = SubjectQuery(keys=[], since=datetime.min.replace(tzinfo=UTC), fragments_only=False, limit=0)


def placement_read(
    *, mailbox_id: int, message_ids: list[str], lock_subject_keys: list[str], subject_query: SubjectQuery | None
) -> PlacementRead:
    """Take the advisory locks of ``message_ids`` and ``lock_subject_keys`` until the transaction ends,
    then read the map rows of ``message_ids``, lock their threads (in id order) and run ``subject_query``.

    Call inside a transaction. In a batch, only the locks and the map rows (from the batch).
    """
    if batch_current() is not None:
        conversation_lock(mailbox_id=mailbox_id, message_ids=message_ids, subject_keys=lock_subject_keys)
        return PlacementRead(known=known_ids_fetch(mailbox_id=mailbox_id, message_ids=message_ids))
    keys = conversation_lock_keys(mailbox_id=mailbox_id, message_ids=message_ids, subject_keys=lock_subject_keys)
    query = subject_query or _NO_SUBJECT
    params = [mailbox_id, keys, message_ids, query.keys, query.since, query.fragments_only, query.limit]
    with connection.cursor() as cursor:
        cursor.execute(_READ_SQL, params)
        rows = cursor.fetchall()
    known, locked, candidates = {}, {}, []
    for kind, message_id, thread_id, seen, sender, is_bulk, anchor, manual, fragment, count, *subject in rows:
        if kind == "i":
            known[message_id] = (message_id, thread_id, seen, sender, is_bulk, anchor)
        elif kind == "t":
            locked[thread_id] = locked_thread(mailbox_id, (thread_id, manual, fragment, count))
        else:
            candidates.append(Candidate(thread_id, subject[0], subject[1], count, *subject[2:]))
    return PlacementRead(known, locked, subject_query, candidates)
