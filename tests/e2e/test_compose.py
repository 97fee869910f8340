"""Compose in a real browser: autosave without clicking, resume after a reload, reply quoting,
attachment upload with progress, address suggestions; screenshots at desktop and phone width."""

import re

import pytest
from playwright.sync_api import expect

from delivery.models import OutboundDelivery
from mailbox.models import Draft
from mailbox.services import message_import_raw
from mailbox.services.contacts import contact_record
from tests.e2e.conftest import log_in, off_loop, screenshot
from tests.mail import raw_message

DRAFT_URL = re.compile(r"/drafts/\d+/$")


def test_a_draft_autosaves_and_resumes_after_reload(page, tripwire, mailbox, request):
    log_in(page, mailbox.address)
    page.goto("/compose/")
    page.get_by_label("To", exact=True).fill("dave@example.org")
    page.get_by_label("Subject").fill("Plans for Friday")
    page.get_by_label("Message").fill("Dinner at eight?")

    # No click: the debounced autosave creates the draft and moves the address bar to it.
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Saved \d\d:\d\d:\d\d$"))
    page.wait_for_url(DRAFT_URL)
    draft = Draft.objects.get(mailbox=mailbox)
    assert (draft.to, draft.subject, draft.body) == ("dave@example.org", "Plans for Friday", "Dinner at eight?")

    page.get_by_label("Message").fill("Dinner at eight? Or nine.")
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Saved"))
    expect(page.locator("[name=version]")).to_have_value("2")
    page.reload()
    expect(page.get_by_label("Subject")).to_have_value("Plans for Friday")
    expect(page.get_by_label("Message")).to_have_value("Dinner at eight? Or nine.")
    screenshot(page, request.node.name, "resumed")

    page.goto("/drafts/")
    page.get_by_role("link", name=re.compile("Plans for Friday")).click()
    page.wait_for_url(f"**/drafts/{draft.id}/")
    page.set_viewport_size({"width": 360, "height": 740})
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(page, request.node.name, "phone")
    assert tripwire.dialogs == []
    assert tripwire.console_errors == []


def test_reply_to_a_delivered_message_quotes_it(page, tripwire, mailbox, request):
    raw = raw_message("quarterly@example.org", "Quarterly numbers", to=mailbox.address)
    message = off_loop(message_import_raw, mailbox=mailbox, raw=raw, source_tag="test").message
    log_in(page, mailbox.address)

    page.goto(f"/compose/?reply_to={message.id}&mode=reply")

    expect(page.get_by_role("heading", name="Reply")).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_value("Re: Quarterly numbers")
    expect(page.get_by_label("To", exact=True)).to_have_value("Carol <carol@example.org>")
    body = page.get_by_label("Message").input_value()
    assert "On Mon, 2 Nov 2026 at 10:00, Carol <carol@example.org> wrote:\n> Body of Quarterly numbers" in body
    page.get_by_label("Message").press("Control+Home")
    page.keyboard.type("Sounds good.")
    page.wait_for_url(DRAFT_URL)
    draft = Draft.objects.get(mailbox=mailbox)
    assert (draft.mode, draft.reply_to_id) == ("reply", message.id)
    assert draft.body.startswith("Sounds good.")
    screenshot(page, request.node.name, "reply")
    assert tripwire.console_errors == []


def test_attachment_upload_shows_progress_and_lands(page, tripwire, mailbox, request):
    log_in(page, mailbox.address)
    page.goto("/compose/")
    page.get_by_label("Subject").fill("With a file")
    # Record every value the progress bar takes: a local upload is over in a moment.
    page.evaluate(
        """() => {
          window.progressSeen = [];
          new MutationObserver(() => {
            document.querySelectorAll('#upload-progress progress').forEach(p => window.progressSeen.push(p.value));
          }).observe(document.getElementById('upload-progress'), {subtree: true, childList: true, attributes: true,
                                                                   characterData: true});
        }"""
    )
    payload = b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)
    page.get_by_label("Attach files").set_input_files(
        {"name": "report.pdf", "mimeType": "application/pdf", "buffer": payload}
    )

    attached = page.locator("#attachment-list li", has_text="report.pdf")
    expect(attached).to_be_visible()
    expect(attached).to_contain_text("3.0 MB")
    # The bar moved (upload progress events arrived) before the row turned into the attachment.
    assert page.evaluate("Math.max(0, ...window.progressSeen)") > 0
    assert page.locator("#upload-progress li").count() == 0
    draft = Draft.objects.get(mailbox=mailbox)
    (attachment,) = draft.attachments.all()
    assert (attachment.filename, attachment.size) == ("report.pdf", len(payload))
    screenshot(page, request.node.name, "attached")

    page.get_by_role("button", name="Remove report.pdf").click()
    page.wait_for_url(DRAFT_URL)
    expect(page.locator("#attachment-list li")).to_have_count(0)
    assert tripwire.console_errors == []


def test_too_large_attachment_is_refused_with_a_message(page, tripwire, mailbox, settings, request):
    settings.MAILSITE_COMPOSE_MAX_ATTACHMENT_BYTES = 1024
    log_in(page, mailbox.address)
    page.goto("/compose/")
    page.get_by_label("Message").fill("keep me")
    page.get_by_label("Attach files").set_input_files(
        {"name": "big.bin", "mimeType": "application/octet-stream", "buffer": b"0" * 4096}
    )
    expect(page.locator("#upload-progress")).to_contain_text("Too large: attachments can be at most 1.0 KB.")
    expect(page.get_by_label("Message")).to_have_value("keep me")
    screenshot(page, request.node.name, "refused")


def test_autocomplete_suggests_a_contact(page, tripwire, mailbox, request):
    contact_record(mailbox=mailbox, address="carol@example.org", display_name="Carol Jones")
    contact_record(mailbox=mailbox, address="dave@example.org", display_name="Dave")
    log_in(page, mailbox.address)
    page.goto("/compose/")

    to = page.get_by_label("To", exact=True)
    to.press_sequentially("erin@example.org, car")
    suggestions = page.get_by_role("listbox", name="Suggested addresses for To")
    option = suggestions.get_by_role("option", name="Carol Jones <carol@example.org>")
    expect(option).to_be_visible()
    expect(suggestions.get_by_role("option")).to_have_count(1)
    screenshot(page, request.node.name, "suggestions")
    to.press("ArrowDown")
    to.press("Enter")
    expect(to).to_have_value("erin@example.org, Carol Jones <carol@example.org>, ")
    expect(option).to_be_hidden()
    assert tripwire.console_errors == []


def _nothing_sent() -> bool:
    return not OutboundDelivery.objects.exists()


def test_enter_in_a_one_line_field_neither_sends_nor_removes_an_attachment(page, tripwire, mailbox, request):
    log_in(page, mailbox.address)
    page.goto("/compose/")
    page.get_by_label("To", exact=True).fill("dave@example.org")
    page.get_by_label("Subject").fill("Enter is not Send")
    page.get_by_label("Attach files").set_input_files(
        {"name": "keep.pdf", "mimeType": "application/pdf", "buffer": b"%PDF"}
    )
    expect(page.get_by_role("button", name="Remove keep.pdf")).to_be_visible()

    page.get_by_label("Subject").press("Enter")
    expect(page.locator("#save-status")).to_have_text(re.compile(r"^Saved"))
    page.get_by_label("To", exact=True).press("Enter")
    # The typed address is accepted as an entry, as a chosen suggestion would be.
    expect(page.get_by_label("To", exact=True)).to_have_value("dave@example.org, ")
    page.get_by_label("Cc", exact=True).fill("erin@example.org")
    page.get_by_label("Cc", exact=True).press("Enter")
    expect(page.get_by_label("Cc", exact=True)).to_have_value("erin@example.org, ")
    page.get_by_label("Bcc", exact=True).press("Enter")

    expect(page.locator("#save-status")).to_have_text(re.compile(r"^Saved"))
    page.wait_for_url(DRAFT_URL)
    expect(page.locator("#attachment-list li", has_text="keep.pdf")).to_be_visible()
    draft = off_loop(Draft.objects.get, mailbox=mailbox)
    assert draft.subject == "Enter is not Send"
    assert off_loop(lambda: list(draft.attachments.values_list("filename", flat=True))) == ["keep.pdf"]
    assert off_loop(_nothing_sent)
    screenshot(page, request.node.name, "after-enter")
    assert tripwire.console_errors == []


def test_without_javascript_enter_saves_the_draft(chromium_browser, asgi_server, mailbox, request):
    context = chromium_browser.new_context(base_url=asgi_server, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        log_in(page, mailbox.address)
        page.goto("/compose/")
        page.get_by_label("To", exact=True).fill("dave@example.org")
        page.get_by_label("Subject").fill("No script here")
        page.get_by_label("Attach files").set_input_files(
            {"name": "keep.pdf", "mimeType": "application/pdf", "buffer": b"%PDF"}
        )
        page.get_by_label("Subject").press("Enter")
        page.wait_for_url(DRAFT_URL)
        expect(page.get_by_text("Draft saved.")).to_be_visible()
        expect(page.locator("#attachment-list li", has_text="keep.pdf")).to_be_visible()

        # Now Remove comes before Send in the form: Enter must still only save.
        page.get_by_label("Subject").fill("No script here, still")
        page.get_by_label("Subject").press("Enter")
        expect(page.get_by_label("Subject")).to_have_value("No script here, still")
        page.get_by_label("To", exact=True).press("Enter")
        expect(page.get_by_text("Draft saved.")).to_be_visible()
        expect(page.locator("#attachment-list li", has_text="keep.pdf")).to_be_visible()
        draft = off_loop(Draft.objects.get, mailbox=mailbox)
        assert draft.subject == "No script here, still"
        assert off_loop(lambda: draft.attachments.count()) == 1
        assert off_loop(_nothing_sent)
        screenshot(page, request.node.name, "saved")
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/drafts/", "/labels/", "/settings/"])
def test_question_mark_opens_the_shortcuts_help_on_every_page(page, tripwire, mailbox, path):
    log_in(page, mailbox.address)
    page.goto(path)
    page.locator("h1").click()  # no form field has the focus: keys are shortcuts

    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    assert tripwire.console_errors == []
