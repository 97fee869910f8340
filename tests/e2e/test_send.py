"""Sending in a real browser: Undo from the flash brings the draft back; Send later lists the
message under Scheduled, where Cancel brings it back as a draft too."""

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from delivery.models import OutboundDelivery
from mailbox.models import Draft
from tests.e2e.conftest import log_in, off_loop, screenshot

DRAFT_URL = re.compile(r"/drafts/\d+/$")


def _write(page, subject: str) -> None:
    page.goto("/compose/")
    page.get_by_label("To", exact=True).fill("dave@example.org")
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Message").fill("See you at eight.")


def _statuses() -> set[str]:
    return set(OutboundDelivery.objects.values_list("status", flat=True))


def test_undo_from_the_sent_flash_brings_the_draft_back(page, tripwire, mailbox, settings, request):
    settings.MAILSITE_UNDO_SEND_SECONDS = 120  # time enough to click Undo on a slow machine
    log_in(page, mailbox.address)
    _write(page, "Dinner plans")
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page.get_by_role("status").filter(has_text="Message sent.")).to_be_visible()
    screenshot(page, request.node.name, "sent")
    page.get_by_role("button", name="Undo").click()

    page.wait_for_url(DRAFT_URL)
    expect(page.get_by_text("Sending undone. Your message is back as a draft.")).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_value("Dinner plans")
    expect(page.get_by_label("Message")).to_have_value("See you at eight.")
    assert off_loop(_statuses) == {OutboundDelivery.Status.CANCELLED}
    assert tripwire.console_errors == []


def test_send_later_appears_under_scheduled_and_cancel_brings_it_back(page, tripwire, mailbox, request):
    log_in(page, mailbox.address)
    _write(page, "Birthday wishes")
    when = timezone.now() + timedelta(days=2)
    # No zone chosen yet: the label names the browser's (timezone.js), and the time is read in it.
    browser_zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    send_later = page.get_by_label(f"Send later ({browser_zone})")
    send_later.fill(when.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Send", exact=True).click()

    page.wait_for_url("**/scheduled/")
    expect(page.get_by_text(re.compile(rf"Message scheduled for .* {re.escape(browser_zone)}\."))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Birthday wishes"))).to_be_visible()
    assert off_loop(_statuses) == {OutboundDelivery.Status.SCHEDULED}
    screenshot(page, request.node.name, "scheduled")

    page.get_by_role("button", name=re.compile("Cancel")).click()
    page.wait_for_url(DRAFT_URL)
    expect(page.get_by_text("Scheduled send cancelled. Your message is back as a draft.")).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_value("Birthday wishes")
    assert off_loop(lambda: Draft.objects.get(mailbox=mailbox).subject) == "Birthday wishes"
    page.goto("/scheduled/")
    expect(page.get_by_text("Nothing scheduled.")).to_be_visible()
    assert tripwire.console_errors == []
