"""Hot read statements as server-side prepared statements.

Django's psycopg cursors bind parameters on the client, so PostgreSQL parses and plans every
statement anew; on the inbox that was most of the database's CPU (the page's statement: 2.0 ms
of backend CPU as sent, 1.0 ms prepared; the user and the labels: 0.25 → 0.05 ms each). The few
statements every page runs go through ``fetch_prepared`` instead: bound on the server and prepared
once per connection (psycopg keeps them, at most ``prepared_max`` per connection, least recently
used dropped first), then run by name.

``DATABASE_PREPARED_STATEMENTS=0`` (for a PgBouncer in transaction mode, unless it is 1.21 or newer
with ``max_prepared_statements`` above 0: otherwise it cannot follow prepared statements across
server connections) turns the preparing off: the statements are then bound on the server and
planned each time."""

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.postgresql.base import ServerBindingCursor


class _PreparingCursor(ServerBindingCursor):
    """Prepares each statement on its first run (psycopg's default waits for the fifth)."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

    def _send_query_prepared(self, name: bytes, pgq: Any, *, binary: bool | None = None) -> None:
        # Django's query log (``connection.queries``, ``CaptureQueriesContext``) reads the statement
        # from ``_query``, which psycopg records for a statement sent as text but not for one run
        # by name.
        self._query = pgq
        super()._send_query_prepared(name, pgq, binary=binary)


def fetch_prepared(
    sql: str, params: Sequence[Any] | Mapping[str, Any], *, using: str = DEFAULT_DB_ALIAS
) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (a constant statement: its text names the prepared statement) run with
    ``params``, as a prepared statement of this connection. Goes through Django's cursor wrapper,
    so query logging, ``execute_wrapper`` and error translation apply as to any other query."""
    connection = connections[using]
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = _PreparingCursor(connection.connection)
    with connection._prepare_cursor(raw) as cursor:  # the wrapping ``connection.cursor()`` does
        cursor.execute(sql, params)
        return cursor.fetchall()
