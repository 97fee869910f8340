"""The /search/ page: results in the thread-list page, friendly messages, keyset links, query count."""

from email.message import EmailMessage

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailbox.selectors import PAGE_SIZE
from mailbox.services import message_import_raw
from mailbox.services.preferences import mailbox_settings_update

pytestmark = pytest.mark.django_db


def _deliver(mailbox, n: int, body: str) -> None:
    msg = EmailMessage()
    msg["From"] = f"Sender {n} <sender{n}@example.org>"
    msg["To"] = mailbox.address
    msg["Subject"] = f"Subject {n}"
    msg["Message-ID"] = f"<view-{n}@example.org>"
    msg["Date"] = f"Mon, 02 Nov 2026 10:{n // 60:02d}:{n % 60:02d} +0000"
    msg.set_content(body)
    message_import_raw(mailbox=mailbox, raw=bytes(msg), source_tag="test")


def test_search_page_lists_matching_threads(client, mailbox, other_mailbox):
    _deliver(mailbox, 1, "the migration plan")
    _deliver(mailbox, 2, "lunch")
    _deliver(other_mailbox, 3, "their migration plan")
    client.force_login(mailbox.user)

    response = client.get(reverse("search"), {"q": "migration"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Subject 1" in html
    assert "Subject 2" not in html
    assert "Subject 3" not in html
    assert 'value="migration"' in html, "the box keeps the query"
    assert response.context["search_error"] == ""
    assert response.context["query"] == "migration"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('"never closed', "quotation mark is not closed"),
        ("is:important", "is not a search option"),
        ("before:soon", "is not a date"),
        ("category:social", "“category:” is not supported"),
        ("deliveredto:me@example.org", "“deliveredto:” is not supported"),
        ("in:drafts", "listed on the Drafts page"),
        ("newer_than:yesterday", "is not a duration"),
        ("larger:huge", "is not a size"),
        ("", "Type a word"),
        ("(from:alice OR bob", "parenthesis is not closed"),
        ("x" * 5000, "too long"),
    ],
)
def test_malformed_query_shows_a_friendly_message(client, mailbox, query, message):
    client.force_login(mailbox.user)

    response = client.get(reverse("search"), {"q": query})

    assert response.status_code == 200
    assert message in response.context["search_error"]
    assert 'role="alert"' in response.content.decode()
    assert response.context["page"].threads == []


@pytest.mark.parametrize("query", ["\x00", "东\x00京", "a" * 3000 + " b", "' OR 1=1 --", "%_\\", "🙂 emoji"])
def test_odd_input_never_errors(client, mailbox, query):
    _deliver(mailbox, 1, "plain text")
    client.force_login(mailbox.user)
    assert client.get(reverse("search"), {"q": query}).status_code == 200


def test_older_link_keeps_the_query_and_pages_by_keyset(client, mailbox):
    for n in range(PAGE_SIZE + 2):
        _deliver(mailbox, n, "needle")
    _deliver(mailbox, 999, "haystack")
    client.force_login(mailbox.user)

    first = client.get(reverse("search"), {"q": "needle"})
    older = first.context["page"].older
    assert f"?q=needle&amp;older={older.encode()}".replace(":", "%3A").replace("+", "%2B") in first.content.decode()
    second = client.get(reverse("search"), {"q": "needle", "older": older.encode()})

    first_ids = {t.id for t in first.context["page"].threads}
    second_ids = {t.id for t in second.context["page"].threads}
    assert len(first_ids) == PAGE_SIZE
    assert len(second_ids) == 2
    assert not first_ids & second_ids
    assert not second.context["is_first_page"]


def test_search_page_queries_do_not_grow_with_results(client, mailbox):
    client.force_login(mailbox.user)

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("search"), {"q": "common"}).status_code == 200
        return len(captured.captured_queries)

    _deliver(mailbox, 1000, "common words")
    one_result = page_queries()
    for n in range(PAGE_SIZE):
        _deliver(mailbox, n, "common words")
    # Session, user, mailbox, up to four search statements, labels, unread counts, chips, last event.
    assert page_queries() == one_result <= 14


def test_a_user_without_a_mailbox_gets_the_no_mailbox_page(client, django_user_model):
    user = django_user_model.objects.create_user(username="staff-only", password="x")
    client.force_login(user)
    assert client.get(reverse("search"), {"q": "x"}).status_code == 404


def test_dates_in_the_search_box_are_days_in_the_users_time_zone(client, mailbox):
    # Delivered 2 Nov 10:00 UTC: still 2 November in UTC, already 3 November in Kiritimati (UTC+14).
    _deliver(mailbox, 1, "kiritimati")
    client.force_login(mailbox.user)

    def found(query: str) -> bool:
        return "Subject 1" in client.get(reverse("search"), {"q": query}).content.decode()

    assert found("after:2026/11/02 before:2026/11/03")
    assert not found("after:2026/11/03")
    mailbox_settings_update(mailbox=mailbox, display_name="", keyboard_shortcuts=True, timezone="Pacific/Kiritimati")
    assert found("after:2026/11/03")
    assert not found("before:2026/11/03")
