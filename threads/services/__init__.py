"""Writes of the threads app, one module per purpose; import from here.

The services run inside their caller's transaction without savepoints of their own
(``atomic(savepoint=False)``): the resolver is on every delivery's path and each savepoint costs
two round trips. An error still rolls back the whole caller's transaction (or its own savepoint).
"""

from threads.services.batching import ThreadBatch, batch_current, thread_batch
from threads.services.locking import conversation_lock, threads_lock
from threads.services.resolving import (
    REASON_NEW,
    REASON_REFERENCE,
    REASON_SUBJECT,
    SUBJECT_JOIN_MAX_MESSAGES,
    WINDOW,
    ThreadPlacement,
    placements_prepare,
    thread_place_message,
)
from threads.services.restructuring import (
    thread_absorb,
    thread_create,
    thread_message_ids_forget,
    thread_message_ids_move,
    thread_subject_joins_confirm,
    threads_delete,
    threads_mark_manual,
)
from threads.services.summaries import (
    MAX_CORRESPONDENTS,
    MAX_DISPLAY_PARTICIPANTS,
    SUMMARY_FIELDS,
    SummaryDelta,
    ThreadSummary,
    correspondents_capped,
    participants_add,
    thread_add_message_summary,
    thread_counts_adjust,
    thread_summary_set,
)

__all__ = [
    "MAX_CORRESPONDENTS",
    "MAX_DISPLAY_PARTICIPANTS",
    "REASON_NEW",
    "REASON_REFERENCE",
    "REASON_SUBJECT",
    "SUBJECT_JOIN_MAX_MESSAGES",
    "SUMMARY_FIELDS",
    "WINDOW",
    "SummaryDelta",
    "ThreadBatch",
    "ThreadPlacement",
    "ThreadSummary",
    "batch_current",
    "conversation_lock",
    "correspondents_capped",
    "participants_add",
    "placements_prepare",
    "thread_absorb",
    "thread_add_message_summary",
    "thread_batch",
    "thread_counts_adjust",
    "thread_create",
    "thread_message_ids_forget",
    "thread_message_ids_move",
    "thread_place_message",
    "thread_subject_joins_confirm",
    "thread_summary_set",
    "threads_delete",
    "threads_lock",
    "threads_mark_manual",
]
