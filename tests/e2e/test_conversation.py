"""The conversation view in a real browser: lazy bodies, inline images through the signed route,
attachments, remote images on request, no request off this machine, and marking read by POST
once shown (with JavaScript) or by a button (without)."""

import re
from urllib.parse import urlsplit

from playwright.sync_api import expect

from mailbox.models import Message
from mailbox.services import message_import_raw, messages_mark_read
from tests.e2e.conftest import PASSWORD, log_in, off_loop, screenshot
from tests.mailbox.conversation_mail import NEWSLETTER_HTML, PNG, conversation_message
from threads.models import Thread

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

    with page.expect_request(lambda req: "/proxy/image/" in req.url):  # the browser asks us, never the sender
        latest.get_by_role("link", name="Show images").click()
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
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # the page itself fits a phone
    screenshot(page, request.node.name, "360px")
    assert any(f"/m/{message.id}/body/" in url for url in requests)
    assert [url for url in requests if urlsplit(url).hostname not in {"127.0.0.1", None, ""}] == []
    assert tripwire.dialogs == []


UNREAD = re.compile(r"\bunread\b")


def test_opening_a_conversation_marks_it_read_and_the_list_follows(page, tripwire, mailbox, request):
    message = _deliver(mailbox, 0, thread="fresh", text="Fresh news")
    log_in(page, mailbox.address)
    row = page.locator(f"#thread-{message.thread_id}")
    expect(row).to_have_class(UNREAD)
    expect(page).to_have_title(re.compile(r"^Inbox \(1\) · "))
    expect(page.locator("body")).to_have_attribute("data-live", "connected")

    # A GET alone (a link prefetcher, a preview) changes nothing.
    assert page.request.get(f"/t/{message.thread_id}/").ok
    assert not Message.objects.get(pk=message.id).is_read

    reader = page.context.new_page()
    reader.on("console", lambda msg: msg.type == "error" and tripwire.console_errors.append(msg.text))
    reader.goto(f"/t/{message.thread_id}/")
    expect(reader.locator("main.conversation")).to_have_attribute("data-mark-read", "done")
    assert Message.objects.get(pk=message.id).is_read

    # The list open in the first tab turns the row read live, and its count with it.
    expect(row).not_to_have_class(UNREAD)
    expect(page).to_have_title(re.compile(r"^Inbox · "))
    # Back to the list from the conversation: read there too.
    reader.get_by_role("link", name="← Inbox").click()
    expect(reader.locator(f"#thread-{message.thread_id}")).not_to_have_class(UNREAD)
    expect(reader.locator("[data-unread-for]").first).to_have_text("")
    screenshot(reader, request.node.name, "list-after-reading")
    assert tripwire.console_errors == []


def test_without_javascript_a_button_marks_the_conversation_read(chromium_browser, asgi_server, mailbox):
    message = _deliver(mailbox, 0, thread="nojs", text="Read me without scripts")
    context = chromium_browser.new_context(base_url=asgi_server, java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        log_in(page, mailbox.address, PASSWORD)
        page.goto(f"/t/{message.thread_id}/")
        assert not Message.objects.get(pk=message.id).is_read

        page.get_by_role("button", name="Mark as read").click()
        page.wait_for_url(re.compile(rf"/t/{message.thread_id}/$"))
        assert Message.objects.get(pk=message.id).is_read
        expect(page.get_by_role("button", name="Mark as read")).to_have_count(0)
    finally:
        context.close()


def test_keyboard_shortcuts_in_a_conversation(page, tripwire, mailbox):
    first = _deliver(mailbox, 0, thread="keys", text="First")
    latest = _deliver(mailbox, 1, thread="keys", text="Latest")
    log_in(page, mailbox.address)
    page.goto(f"/t/{first.thread_id}/")

    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()

    page.keyboard.press("r")  # replies to the latest open message
    page.wait_for_url(re.compile(rf"/compose/\?reply_to={latest.id}&mode=reply$"))
    page.go_back()
    page.keyboard.press("g")
    page.keyboard.press("s")
    page.wait_for_url(re.compile(r"/starred/$"))
    page.go_back()
    page.locator("h1").click()
    page.keyboard.press("s")  # stars the conversation, by its own Star button, back to the list
    page.wait_for_url(re.compile(r"^http://[^/]+/$"))
    assert Thread.objects.get(pk=first.thread_id).starred_count > 0
    assert tripwire.console_errors == []
