"""Hot reads run as prepared statements (``mailsite.db.fetch_prepared``), against real PostgreSQL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailsite.db import fetch_prepared

pytestmark = pytest.mark.django_db


def _prepared_statements() -> list[str]:
    """The statements prepared in this connection's session, as PostgreSQL lists them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_is_prepared_on_its_first_run_and_answers_with_its_parameters():
    sql = "SELECT %(n)s::int + 1, %(n)s::int * 2 -- test_a_statement_is_prepared"

    assert fetch_prepared(sql, {"n": 3}) == [(4, 6)]
    assert fetch_prepared(sql, {"n": 10}) == [(11, 20)]

    prepared = [s for s in _prepared_statements() if "test_a_statement_is_prepared" in s]
    assert prepared == ["SELECT $1::int + 1, $1::int * 2 -- test_a_statement_is_prepared"]


def test_turned_off_the_statement_still_answers_but_is_not_prepared(monkeypatch):
    connection.ensure_connection()
    # What DATABASE_PREPARED_STATEMENTS=0 sets (OPTIONS' prepare_threshold None) for a pooler
    # that cannot follow prepared statements.
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)

    assert fetch_prepared("SELECT %s::int -- turned_off", [7]) == [(7,)]

    assert not [s for s in _prepared_statements() if "turned_off" in s]


def test_prepared_runs_are_in_the_query_log():
    sql = "SELECT %s::text -- in_the_query_log"
    fetch_prepared(sql, ["first"])  # prepared now: the next run goes by name

    with CaptureQueriesContext(connection) as captured:
        assert fetch_prepared(sql, ["second"]) == [("second",)]

    # As the server runs it: placeholders, the values bound apart.
    assert [q["sql"] for q in captured.captured_queries] == ["SELECT $1::text -- in_the_query_log"]


def test_the_inbox_page_prepares_its_statements(client, mailbox):
    client.force_login(mailbox.user)

    assert client.get("/").status_code == 200

    statements = _prepared_statements()
    # The user with the mailbox, the labels with their counts, the page's rows.
    assert any("FROM auth_user u LEFT JOIN mailbox_mailbox m" in s for s in statements)
    assert any("FROM mailbox_label l WHERE l.mailbox_id = $1" in s for s in statements)
    assert any("FROM mailbox_threadlabel k JOIN threads_thread t" in s for s in statements)


@pytest.mark.django_db(transaction=True)
def test_a_statement_prepared_before_a_migration_answers_with_the_new_columns():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE prepared_probe (v integer)")
        cursor.execute("INSERT INTO prepared_probe VALUES (1)")
    try:
        assert fetch_prepared("SELECT * FROM prepared_probe", []) == [(1,)]
        with connection.cursor() as cursor:  # a migration while web processes keep their connections
            cursor.execute("ALTER TABLE prepared_probe ADD COLUMN w text DEFAULT 'x'")
            cursor.execute("ALTER TABLE prepared_probe ALTER COLUMN v TYPE bigint")

        # PostgreSQL plans the prepared statement again (no "cached plan must not change result type").
        assert fetch_prepared("SELECT * FROM prepared_probe", []) == [(1, "x")]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE prepared_probe")
