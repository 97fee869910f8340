"""Irreversible deletes in a real browser: Empty Trash and Delete forever stop at a server-rendered
confirmation page (no script dialogs: the CSP allows none) before anything is deleted."""

import re

from playwright.sync_api import expect

from mailbox.models import Label, Message
from mailbox.services import message_import_raw
from tests.e2e.conftest import log_in, off_loop, screenshot
from tests.mail import raw_message


def _trashed(mailbox, message_id: str, subject: str) -> Message:
    raw = raw_message(message_id, subject, to=mailbox.address)
    return off_loop(
        message_import_raw, mailbox=mailbox, raw=raw, source_tag="test", label_roles=(Label.Role.TRASH,)
    ).message


def _left() -> list[str]:
    return sorted(Message.objects.values_list("subject", flat=True))


def test_empty_trash_and_delete_forever_ask_first(page, tripwire, mailbox, request):
    _trashed(mailbox, "a@x", "Old invoice")
    kept = _trashed(mailbox, "b@x", "Old newsletter")
    trash = Label.objects.get(mailbox=mailbox, role=Label.Role.TRASH)
    log_in(page, mailbox.address)
    page.goto(f"/label/{trash.id}/")

    page.get_by_role("button", name="Empty Trash").click()
    expect(page.get_by_role("heading", name="Empty Trash?")).to_be_visible()
    expect(page.get_by_text("2 conversations (2 messages) will be deleted forever.")).to_be_visible()
    screenshot(page, request.node.name, "confirm")
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(f"**/label/{trash.id}/")
    assert off_loop(_left) == ["Old invoice", "Old newsletter"]

    page.locator(f"#thread-{kept.thread_id}").get_by_role("checkbox").check()
    page.get_by_role("button", name="Delete forever").click()
    expect(page.get_by_text("1 conversation (1 message) will be deleted forever.")).to_be_visible()
    assert off_loop(_left) == ["Old invoice", "Old newsletter"]
    page.get_by_role("button", name="Delete forever").click()
    page.wait_for_url(f"**/label/{trash.id}/")
    expect(page.get_by_role("status")).to_contain_text("Deleted forever.")
    assert off_loop(_left) == ["Old invoice"]

    page.get_by_role("button", name="Empty Trash").click()
    expect(page.get_by_text(re.compile(r"^1 conversation \(1 message\)"))).to_be_visible()
    page.get_by_role("button", name="Empty Trash").click()
    expect(page.get_by_role("status")).to_contain_text("Trash emptied.")
    assert off_loop(_left) == []
    assert tripwire.dialogs == []
    assert tripwire.console_errors == []
