"""Search reads: a query string to a page of threads, scoped to one mailbox."""

from mailbox.models import Mailbox
from mailbox.search.compiling import message_condition
from mailbox.search.query import parse_query
from mailbox.selectors import PAGE_SIZE, Cursor, ThreadPage
from threads.models import Thread

_THREADS_SQL = """
SELECT t.* FROM threads_thread t
WHERE t.mailbox_id = %s AND t.last_message_at IS NOT NULL {keyset}
  AND EXISTS (SELECT 1 FROM mailbox_message m WHERE m.thread_id = t.id AND m.mailbox_id = %s AND ({condition}))
ORDER BY t.last_message_at DESC, t.id DESC
LIMIT %s
"""


def thread_search(*, mailbox: Mailbox, query: str, older_than: Cursor | None = None) -> ThreadPage:
    """One page of the threads holding a message that matches ``query``, newest thread first,
    keyset-paginated like a label's list. Raises ``SearchQueryError`` for a malformed query."""
    condition, condition_params = message_condition(parse_query(query), mailbox=mailbox)
    keyset, keyset_params = "", []
    if older_than is not None:
        keyset, keyset_params = (
            "AND (t.last_message_at, t.id) < (%s, %s)",
            [
                older_than.last_message_at,
                older_than.thread_id,
            ],
        )
    sql = _THREADS_SQL.format(keyset=keyset, condition=condition)
    params = [mailbox.id, *keyset_params, mailbox.id, *condition_params, PAGE_SIZE + 1]
    page = list(Thread.objects.raw(sql, params))
    last = page[PAGE_SIZE - 1] if len(page) > PAGE_SIZE else None
    older = Cursor(last.last_message_at, last.id) if last is not None else None
    return ThreadPage(threads=page[:PAGE_SIZE], older=older)
