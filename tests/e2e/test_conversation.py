"""The conversation view in a real browser: lazy bodies, inline images through the signed route,
attachments, remote images on request, and no request off this machine."""

from urllib.parse import urlsplit

from playwright.sync_api import expect

from mailbox.services import message_import_raw, messages_mark_read
from tests.e2e.conftest import log_in, off_loop, screenshot
from tests.mailbox.conversation_mail import NEWSLETTER_HTML, PNG, conversation_message

# TEST-NET-1: never routed, and refused by the proxy before any connection.
REMOTE_IMAGE = "http://192.0.2.10/tracker.png"


def _deliver(mailbox, n: int, **kwargs):
    raw = conversation_message(n, to=mailbox.address, **kwargs)
    return off_loop(message_import_raw, mailbox=mailbox, raw=raw, source_tag="test").message


def test_reading_a_conversation(page, tripwire, mailbox, request):
    first = _deliver(mailbox, 0, text="The first message, already read.")
    _deliver(
        mailbox,
        1,
        html=f'<p>Logo: <img alt="logo" src="cid:logo@example.org"> and <img alt="remote" src="{REMOTE_IMAGE}"></p>'
        "<p>Reply text</p><blockquote>Quoted earlier text</blockquote>",
        inline_png_cid="logo@example.org",
        attachments=(("photo.png", "image/png", PNG), ("notes.html", "text/html", b"<script>alert(1)</script>")),
    )
    off_loop(messages_mark_read, mailbox=mailbox, message_ids=[first.id])
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    log_in(page, mailbox.address)

    page.goto(f"/t/{first.thread_id}/")

    cards = page.locator("details.message-card")
    assert cards.count() == 2
    assert cards.nth(0).get_attribute("open") is None
    assert cards.nth(1).get_attribute("open") == ""
    assert not any(f"/m/{first.id}/body/" in url for url in requests)  # collapsed: not loaded
    latest = page.frame_locator("iframe.message-body").nth(1)
    assert latest.get_by_text("Reply text").is_visible()
    assert latest.get_by_text("Quoted earlier text").is_hidden()  # folded
    latest.get_by_text("Show quoted text").click()
    assert latest.get_by_text("Quoted earlier text").is_visible()
    logo = latest.get_by_alt_text("logo")
    expect(logo).to_have_js_property("complete", True)
    assert logo.evaluate("img => img.complete && img.naturalWidth") == 1  # served through the signed cid route
    assert page.locator(".attachments img.thumb").evaluate("img => img.naturalWidth") == 1
    assert page.get_by_role("link", name="notes.html").is_visible()
    screenshot(page, request.node.name, "opened")

    cards.nth(0).locator("summary").click()
    page.frame_locator("iframe.message-body").nth(0).get_by_text("The first message, already read.").wait_for()

    latest.get_by_role("link", name="Show images").click()
    page.wait_for_timeout(500)
    assert any("/proxy/image/" in url for url in requests), requests[-6:]  # the browser asks us, never the sender
    assert all(urlsplit(url).hostname in {"127.0.0.1", None, ""} for url in requests if not url.startswith("data:"))
    assert tripwire.dialogs == []


def test_a_newsletters_style_sheet_applies_in_the_viewer(page, tripwire, mailbox, request):
    """The filtered <style> of a newsletter lays it out in the sandboxed body, its media queries
    included, and nothing it names is fetched."""
    message = _deliver(mailbox, 0, thread="news", html=NEWSLETTER_HTML)
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    log_in(page, mailbox.address)

    page.goto(f"/t/{message.thread_id}/")
    body = page.frame_locator("iframe.message-body").first
    button = body.get_by_role("link", name="Read the release notes")
    expect(button).to_have_css("background-color", "rgb(227, 116, 0)")  # .btn a, from the sheet
    expect(body.locator("table.container")).to_have_css("width", "600px")
    expect(body.locator(".hide-mobile")).to_be_visible()
    screenshot(page, request.node.name, "desktop")

    page.set_viewport_size({"width": 360, "height": 740})  # the frame narrows: the phone rules apply
    expect(body.locator(".hide-mobile")).to_be_hidden()
    expect(body.locator("table.container")).not_to_have_css("width", "600px")
    screenshot(page, request.node.name, "360px")
    assert any(f"/m/{message.id}/body/" in url for url in requests)
    assert [url for url in requests if urlsplit(url).hostname not in {"127.0.0.1", None, ""}] == []
    assert tripwire.dialogs == []
