"""The browser harness itself: a real login through the form, then the inbox from the live server."""

from mailbox.services import message_import_raw
from tests.e2e.conftest import log_in, off_loop, screenshot
from tests.mail import raw_message


def test_login_shows_the_inbox_with_its_mail(page, tripwire, mailbox, request):
    raw = raw_message("harness-1@example.org", "Browser harness check", to=mailbox.address)
    off_loop(message_import_raw, mailbox=mailbox, raw=raw, source_tag="test")

    log_in(page, mailbox.address)

    assert page.get_by_text("Browser harness check", exact=True).is_visible()
    assert "Inbox" in page.title()
    screenshot(page, request.node.name, "inbox")
    assert tripwire.dialogs == []
    assert tripwire.console_errors == []
