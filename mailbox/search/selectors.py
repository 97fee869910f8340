"""Search reads: a query string to a page of threads, scoped to one mailbox.

Results are threads ordered like every thread list (latest message first, keyset on
``(last_message_at, id)``), holding at least one message that matches. Two plans, chosen per query
by estimate and count, because either plan is slow where the other is fast:

- **few hits** (a rare word, a name): the GIN indexes find the matching messages; their threads
  are sorted, at most ``PROBE_LIMIT`` of them — under 2 ms at 1M messages;
- **many hits** (a common word): walk the mailbox's threads newest first on their index and keep
  those with a matching message, so ``LIMIT`` stops after a few hundred threads instead of
  fetching and sorting every hit (~270 ms for 125k hits that way).

Which one: PostgreSQL's row estimate for the indexed terms is good for frequent words (they are
in the column's statistics) and only a rough upper bound for rare ones. Above ``WALK_ESTIMATE`` the
walk is taken at once (building a GIN bitmap of 125k hits alone costs tens of ms); otherwise a
probe counts the real hits with one GIN bitmap scan reading at most ``PROBE_LIMIT + 1`` rows,
which are then the first plan's input. Queries with no indexed term (only flags, dates, labels)
walk, narrowed by the thread summaries (``compiling.thread_condition``). At most four
statements, whatever the result; a few-hits page three, outside any transaction.
"""

import json

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from mailbox.models import Mailbox
from mailbox.search.compiling import indexed_condition, message_condition, thread_condition
from mailbox.search.query import parse_query
from mailbox.selectors import PAGE_SIZE, Cursor, ThreadPage
from mailbox.services.preferences import mailbox_zone
from threads.models import Thread

# Above this many matching messages walking the thread index wins (measured in bench/search.py).
PROBE_LIMIT = 1000
WALK_ESTIMATE = 5 * PROBE_LIMIT

_PROBE_SQL = "SELECT m.id FROM mailbox_message m WHERE m.mailbox_id = %s AND ({condition})"
_FEW_HITS_SQL = """
SELECT t.* FROM threads_thread t
WHERE t.mailbox_id = %s {keyset}
  AND t.id IN (SELECT m.thread_id FROM mailbox_message m WHERE m.mailbox_id = %s AND m.id = ANY(%s) AND ({condition}))
ORDER BY t.last_message_at DESC, t.id DESC
LIMIT %s
"""
_WALK_SQL = """
SELECT t.* FROM threads_thread t
WHERE t.mailbox_id = %s AND t.last_message_at IS NOT NULL {keyset}
  AND {test}
ORDER BY t.last_message_at DESC, t.id DESC
LIMIT %s
"""
_MATCHING_MESSAGE = "SELECT 1 FROM mailbox_message m WHERE m.thread_id = t.id AND m.mailbox_id = %s AND ({condition})"
# A scalar sub-select is never turned into a join, so this test makes the plan walk the thread
# index, checking each thread's messages, until LIMIT is reached.
_WALK_TEST = f"({_MATCHING_MESSAGE} LIMIT 1) IS NOT NULL"
# The walk's estimated cost is the whole index, though LIMIT stops it early: without this,
# PostgreSQL's JIT would spend hundreds of milliseconds compiling it.
_NO_JIT = "SET LOCAL jit = off"


def thread_search(*, mailbox: Mailbox, query: str, older_than: Cursor | None = None) -> ThreadPage:
    """One page of the threads holding a message that matches ``query``, newest thread first.

    ``before:``/``after:`` days are the user's: they start at midnight in the mailbox's time zone
    (UTC when none is set). Raises ``SearchQueryError`` for a malformed query. Every statement
    filters on the mailbox."""
    tree = parse_query(query, zone=mailbox_zone(mailbox=mailbox))
    condition, condition_params = message_condition(tree, mailbox=mailbox)
    indexed = indexed_condition(tree, mailbox=mailbox)
    keyset, keyset_params = _keyset(older_than)
    thread_test, thread_params = thread_condition(tree, mailbox=mailbox)
    # Conditions on the thread row: the keyset position and what the summaries already tell.
    keyset, keyset_params = f"{keyset} AND {thread_test}", [*keyset_params, *thread_params]
    with connection.cursor() as cursor:
        hits = _few_hits(cursor, mailbox, indexed) if indexed is not None else None
    if hits is not None:
        # Costed on at most PROBE_LIMIT ids, far below where JIT starts: no transaction and no
        # SET, so a rare word costs three round trips to the database, not six.
        sql = _FEW_HITS_SQL.format(keyset=keyset, condition=condition)
        params = [mailbox.id, *keyset_params, mailbox.id, hits, *condition_params, PAGE_SIZE + 1]
        return _page(Thread.objects.raw(sql, params))
    sql = _WALK_SQL.format(keyset=keyset, test=_WALK_TEST.format(condition=condition))
    params = [mailbox.id, *keyset_params, mailbox.id, *condition_params, PAGE_SIZE + 1]
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(_NO_JIT)
        return _page(Thread.objects.raw(sql, params))


def _few_hits(cursor: CursorWrapper, mailbox: Mailbox, indexed: tuple[str, list]) -> list[int] | None:
    """The ids of the messages matching the indexed terms if there are at most ``PROBE_LIMIT``.

    Only run when the estimate is low: then the planner itself takes the GIN bitmap, since a
    sequential scan would have to read a large part of the table to find ``PROBE_LIMIT`` rows."""
    sql, params = _PROBE_SQL.format(condition=indexed[0]), [mailbox.id, *indexed[1]]
    if _estimated_rows(cursor, sql, params) > WALK_ESTIMATE:
        return None
    cursor.execute(f"{sql} LIMIT %s", [*params, PROBE_LIMIT + 1])
    hits = [row[0] for row in cursor.fetchall()]
    return hits if len(hits) <= PROBE_LIMIT else None


def _estimated_rows(cursor: CursorWrapper, sql: str, params: list) -> float:
    cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
    plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"]


def _keyset(older_than: Cursor | None) -> tuple[str, list]:
    if older_than is None:
        return "", []
    return "AND (t.last_message_at, t.id) < (%s, %s)", [older_than.last_message_at, older_than.thread_id]


def _page(rows: object) -> ThreadPage:
    page = list(rows)
    last = page[PAGE_SIZE - 1] if len(page) > PAGE_SIZE else None
    return ThreadPage(threads=page[:PAGE_SIZE], older=Cursor(last.last_message_at, last.id) if last else None)
