"""Locks that keep concurrent writers of one conversation from splitting it.

Two workers placing replies of one conversation at the same moment would each find no thread and
start one. Before it looks anything up, the resolver takes a PostgreSQL advisory transaction lock
per Message-ID it will read or write and one per subject key it may match, so such placements run
one after the other and the second sees the first's rows. Thread rows are locked in id order.
"""

import hashlib
from collections.abc import Iterable

from django.db import connection

from threads.models import Thread
from threads.services.batching import batch_current


def _lock_key(mailbox_id: int, kind: str, value: str) -> int:
    digest = hashlib.blake2b(f"{mailbox_id}\x00{kind}\x00{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def conversation_lock_keys(*, mailbox_id: int, message_ids: Iterable[str], subject_keys: Iterable[str]) -> list[int]:
    """The advisory lock keys of these ids and subject keys, ascending (the order they are taken in)."""
    keys = {_lock_key(mailbox_id, "id", i) for i in message_ids}
    keys.update(_lock_key(mailbox_id, "subject", key) for key in subject_keys)
    return sorted(keys)


def conversation_lock(*, mailbox_id: int, message_ids: Iterable[str], subject_keys: Iterable[str] = ()) -> None:
    """Take the advisory locks of these ids and subject keys until the transaction ends.

    Keys are taken in ascending order in one statement, so two placements never wait on each other
    in a cycle. Call inside a transaction, before reading the rows the keys protect.
    """
    keys = set(conversation_lock_keys(mailbox_id=mailbox_id, message_ids=message_ids, subject_keys=subject_keys))
    batch = batch_current()
    if batch is not None:  # a batch takes its keys up front; the same key twice is one lock
        keys -= batch.lock_keys
        batch.lock_keys |= keys
        if not keys:
            return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [sorted(keys)])


def threads_lock(*, mailbox_id: int, thread_ids: Iterable[int]) -> dict[int, Thread]:
    """Lock the mailbox's threads with these ids, in id order; a thread merged away meanwhile is absent.

    The threads come with the fields placement decisions read; the others load on access. In a
    batch (``thread_batch``), whole rows, kept by the batch with their summaries current.
    """
    batch = batch_current()
    if batch is not None:
        return batch.threads_lock(mailbox_id, thread_ids)
    with connection.cursor() as cursor:
        cursor.execute(_THREADS_LOCK_SQL, [mailbox_id, sorted(set(thread_ids))])
        return {row[0]: locked_thread(mailbox_id, row) for row in cursor.fetchall()}


LOCKED_FIELDS = ("id", "mailbox_id", "is_manual", "is_fragment", "message_count")
# Raw SQL: on every delivery's path, and the ORM's query building cost more CPU than the look-up.
_THREADS_LOCK_SQL = (
    "SELECT id, is_manual, is_fragment, message_count FROM threads_thread "
    "WHERE mailbox_id = %s AND id = ANY(%s) ORDER BY id FOR UPDATE"
)


def locked_thread(mailbox_id: int, row: tuple[int, bool, bool, int]) -> Thread:
    """A thread from a locked row (id, is_manual, is_fragment, message_count): ``LOCKED_FIELDS`` loaded,
    the others loading on access."""
    return Thread.from_db(connection.alias, LOCKED_FIELDS, (row[0], mailbox_id, *row[1:]))
