"""Changing which thread holds which Message-IDs: merges, splits, moves, deletions.

The mailbox app moves its message rows and recounts the summaries; these functions keep the
Message-ID map in step, so later messages follow the change.
"""

from django.db import connection, transaction

from threads.models import Thread, ThreadMessageId
from threads.services.batching import batch_current
from threads.subjects import normalize_subject


@transaction.atomic(savepoint=False)
def thread_create(
    *, mailbox_id: int, subject: str, list_id: str = "", is_manual: bool = False, is_fragment: bool = False
) -> Thread:
    thread = thread_build(
        mailbox_id=mailbox_id, subject=subject, list_id=list_id, is_manual=is_manual, is_fragment=is_fragment
    )
    batch = batch_current()
    if batch is not None:
        return batch.thread_add(thread)
    thread.save()
    return thread


def thread_build(
    *, mailbox_id: int, subject: str, list_id: str = "", is_manual: bool = False, is_fragment: bool = False
) -> Thread:
    """A new thread, validated but not saved: ``thread_create`` saves it, or its insert goes into a
    larger statement (``thread_insert_sql``)."""
    thread = Thread(
        mailbox_id=mailbox_id,
        subject=subject,
        normalized_subject=normalize_subject(subject, list_id=list_id),
        list_id=list_id,
        is_manual=is_manual,
        is_fragment=is_fragment,
    )
    thread.full_clean(validate_constraints=False)  # PostgreSQL enforces them on insert
    return thread


_INSERTED_FIELDS = [f for f in Thread._meta.concrete_fields if not f.primary_key]
_INSERT_SQL = (
    f"INSERT INTO {Thread._meta.db_table} ({', '.join(connection.ops.quote_name(f.column) for f in _INSERTED_FIELDS)}) "  # noqa: S608 - names from the model
    f"VALUES ({', '.join(f'%(thread_{f.column})s' for f in _INSERTED_FIELDS)}) RETURNING id"
)


def thread_insert_sql_text() -> str:
    """``INSERT … RETURNING id`` of one thread, to run inside a larger statement with ``%(name)s``
    parameters: ``thread_insert_params`` gives them."""
    return _INSERT_SQL


def thread_insert_params(thread: Thread) -> dict:
    """The parameters of ``thread_insert_sql_text`` for an unsaved thread (named ``thread_`` + column).
    Sets the fields the insert fills in (creation times); the caller sets the id the insert returns
    with ``thread_inserted``."""
    return {
        f"thread_{f.column}": f.get_db_prep_save(f.pre_save(thread, add=True), connection) for f in _INSERTED_FIELDS
    }


def thread_inserted(thread: Thread, pk: int) -> Thread:
    """The thread of ``thread_insert_sql`` as a saved instance, with the id its insert returned."""
    thread.pk = pk
    thread._state.adding = False
    thread._state.db = connection.alias
    return thread


@transaction.atomic(savepoint=False)
def thread_absorb(*, mailbox_id: int, into_id: int, thread_ids: list[int]) -> None:
    """Map every Message-ID (and bulk-reply branch key) of ``thread_ids`` to ``into_id``.

    The caller moves its messages, then deletes the emptied threads with ``threads_delete``.
    """
    absorbed = [i for i in thread_ids if i != into_id]
    batch = batch_current()
    if batch is not None:
        batch.flush()  # the merge reads and moves rows: the database must hold the batch's
    ThreadMessageId.objects.filter(mailbox_id=mailbox_id, thread_id__in=absorbed).update(thread_id=into_id)
    if Thread.objects.filter(mailbox_id=mailbox_id, pk__in=absorbed, is_fragment=False).exists():
        Thread.objects.filter(pk=into_id, is_fragment=True).update(is_fragment=False)  # joined to its conversation
    if batch is not None:
        batch.absorbed(mailbox_id=mailbox_id, into_id=into_id, thread_ids=absorbed)


@transaction.atomic(savepoint=False)
def thread_message_ids_move(*, mailbox_id: int, message_ids: list[str], thread_id: int) -> None:
    """Map these Message-IDs to ``thread_id``: replies to a moved message follow it. The user placed
    them: no longer a subject join that later headers may undo."""
    ThreadMessageId.objects.filter(mailbox_id=mailbox_id, message_id__in=message_ids).update(
        thread_id=thread_id, subject_anchor=""
    )


@transaction.atomic(savepoint=False)
def threads_mark_manual(*, mailbox_id: int, thread_ids: list[int]) -> None:
    """Record that the user arranged these threads: the resolver never merges them automatically."""
    Thread.objects.filter(mailbox_id=mailbox_id, pk__in=thread_ids).update(is_manual=True)
    thread_subject_joins_confirm(mailbox_id=mailbox_id, thread_ids=thread_ids)


@transaction.atomic(savepoint=False)
def thread_subject_joins_confirm(*, mailbox_id: int, thread_ids: list[int]) -> None:
    """The user arranged these threads, as they saw them: their subject joins are decisions now, which
    later headers no longer undo (a manual decision wins over the resolver)."""
    batch = batch_current()
    if batch is not None:
        batch.flush()  # the rows are read and changed in the database: it must hold the batch's
    ids = ThreadMessageId.objects.filter(mailbox_id=mailbox_id, thread_id__in=thread_ids)
    ids.exclude(subject_anchor="").update(subject_anchor="")
    if batch is not None:
        batch.known_forget(mailbox_id, thread_ids)


@transaction.atomic(savepoint=False)
def thread_message_ids_forget(*, mailbox_id: int, message_ids: list[str]) -> None:
    """These messages left the mailbox; their ids stay mapped so later replies still find the thread."""
    ThreadMessageId.objects.filter(mailbox_id=mailbox_id, message_id__in=message_ids).update(seen=False)


@transaction.atomic(savepoint=False)
def threads_delete(*, mailbox_id: int, thread_ids: list[int]) -> None:
    """Delete threads that hold no messages any more, with their Message-ID maps."""
    Thread.objects.filter(mailbox_id=mailbox_id, pk__in=thread_ids).delete()
    batch = batch_current()
    if batch is not None:
        batch.threads_deleted(mailbox_id, thread_ids)
