"""Search in a real browser: Gmail-style operators typed into the search box give the right
conversations as a thread list, a result takes the list's actions, and a malformed query gets a
friendly message (never an error page)."""

import re

from playwright.sync_api import expect

from mailbox.services import message_import_raw
from tests.e2e.conftest import log_in, off_loop, screenshot
from tests.mail import raw_message
from tests.threads.builders import raw_mail
from threads.models import Thread

ALICE = "Alice Archer <alice@example.org>"
BOB = "Bob Baker <bob@example.org>"


def _deliver(mailbox, raw: bytes, *, is_read: bool = True) -> int:
    delivered = off_loop(message_import_raw, mailbox=mailbox, raw=raw, source_tag="test", is_read=is_read)
    return delivered.message.thread_id


def _mail(mailbox) -> dict[str, int]:
    """Four conversations, each found by one of the queries below and by no other."""
    return {
        "report": _deliver(
            mailbox, raw_message("report@x", "Quarterly report", sender=ALICE, attachment=b"%PDF-1.4 numbers")
        ),
        "lunch": _deliver(mailbox, raw_mail("lunch@x", "Lunch on Friday", sender=ALICE, body="At the usual place.")),
        "notes": _deliver(
            mailbox, raw_mail("notes@x", "Project notes", sender=BOB, body="The exact phrase matters here.")
        ),
        "scrambled": _deliver(
            mailbox,
            raw_mail("scrambled@x", "Scrambled", sender=BOB, body="Phrase before exact, in another order."),
            is_read=False,
        ),
    }


def _search(page, query: str):
    """Type a query into the search box and submit it as a user would; the results' response."""
    box = page.get_by_label("Search mail")
    box.fill(query)
    with page.expect_response(re.compile(r"/search/\?q=")) as answer:
        box.press("Enter")
    page.wait_for_load_state()
    return answer.value


def _results(page):
    return page.locator("#thread-list li.thread")


def test_operators_typed_in_the_search_box_find_the_right_conversations(page, tripwire, mailbox, request):
    threads = _mail(mailbox)
    log_in(page, mailbox.address)
    expected = {
        "from:alice has:attachment": ["report"],
        '"exact phrase"': ["notes"],
        "from:alice -lunch": ["report"],
        "is:unread": ["scrambled"],
        "from:bob OR subject:lunch": ["lunch", "notes", "scrambled"],
    }
    for query, names in expected.items():
        response = _search(page, query)
        assert response.status == 200, query
        expect(page.get_by_role("heading", name="Search results")).to_be_visible()
        expect(page.get_by_label("Search mail")).to_have_value(query)
        expect(_results(page)).to_have_count(len(names))
        for name in names:
            expect(page.locator(f"#thread-{threads[name]}")).to_be_visible()
    screenshot(page, request.node.name, "results")
    assert tripwire.console_errors == []


def test_an_action_on_a_search_result(page, tripwire, mailbox, request):
    threads = _mail(mailbox)
    log_in(page, mailbox.address)
    _search(page, "is:unread")
    row = page.locator(f"#thread-{threads['scrambled']}")
    expect(row).to_be_visible()

    row.locator("input.select").check()
    page.get_by_role("button", name="Mark read").click()

    # Back on the same search, which the conversation no longer matches.
    page.wait_for_url(re.compile(r"/search/\?q=is%3Aunread$"))
    expect(page.get_by_role("status").filter(has_text="Marked as read.")).to_be_visible()
    expect(_results(page)).to_have_count(0)
    expect(page.get_by_text("No conversations here.")).to_be_visible()
    assert Thread.objects.get(pk=threads["scrambled"]).unread_count == 0
    _search(page, "from:bob")
    page.locator(f"#thread-{threads['notes']}").get_by_role("button", name="Star").click()
    expect(page.locator(f"#thread-{threads['notes']}").get_by_role("button", name="Unstar")).to_be_visible()
    _search(page, "is:starred")
    expect(_results(page)).to_have_count(1)
    screenshot(page, request.node.name, "starred")
    assert tripwire.console_errors == []


def test_a_malformed_query_gets_a_friendly_message(page, tripwire, mailbox, request):
    _mail(mailbox)
    log_in(page, mailbox.address)
    friendly = {
        "before:notadate": "“before:notadate” is not a date; write it as before:2026/01/31.",
        '"unbalanced quotes': 'A quotation mark is not closed: add the closing ".',
        "is:bogus": "“is:bogus” is not a search option",
        "(lunch OR": "“OR” needs something to search on both sides.",
    }
    for query, message in friendly.items():
        response = _search(page, query)
        assert response.status == 200, query
        expect(page.get_by_role("alert")).to_contain_text(message)
        expect(_results(page)).to_have_count(0)
        expect(page.get_by_label("Search mail")).to_have_value(query)  # kept, to be corrected
    screenshot(page, request.node.name, "malformed")
    assert tripwire.console_errors == []
