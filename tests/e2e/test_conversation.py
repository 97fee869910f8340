"""The conversation view in a real browser: lazy bodies, inline images through the signed route,
attachments, remote images on request, no request off this machine, and marking read by POST
once shown (with JavaScript) or by a button (without)."""

import re
import time
from urllib.parse import urlsplit

from playwright.sync_api import expect

from mailbox.models import Message, ThreadLabel
from mailbox.services import message_import_raw, messages_label_add, messages_mark_read
from mailbox.services.preferences import user_label_create
from tests.e2e.conftest import PASSWORD, log_in, off_loop, press_key, screenshot
from tests.mail import raw_message
from tests.mailbox.conversation_mail import NEWSLETTER_HTML, PNG, conversation_message
from threads.models import Thread

# TEST-NET-1: never routed, and refused by the proxy before any connection.
REMOTE_IMAGE = "http://192.0.2.10/tracker.png"


def _deliver(mailbox, n: int, **kwargs):
    raw = conversation_message(n, to=mailbox.address, **kwargs)
    return off_loop(message_import_raw, mailbox=mailbox, raw=raw, source_tag="test").message


def _listening(page) -> None:
    """The page's scripts have run (its socket is open): a key pressed now reaches its shortcuts
    (one pressed while a page loads is lost)."""
    expect(page.locator("body")).to_have_attribute("data-live", "connected")


def _label_ids(thread_id: int) -> set[int]:
    return set(ThreadLabel.objects.filter(thread_id=thread_id).values_list("label_id", flat=True))


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

    press_key(page, "?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    press_key(page, "Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()

    press_key(page, "r")  # replies to the latest open message
    page.wait_for_url(re.compile(rf"/compose/\?reply_to={latest.id}&mode=reply$"))
    page.go_back()
    press_key(page, "g")
    press_key(page, "s")
    page.wait_for_url(re.compile(r"/starred/$"))
    page.go_back()
    page.locator("h1").click()
    press_key(page, "s")  # stars the conversation by its own Star button, and stays on it
    expect(page.get_by_role("button", name="Unstar")).to_be_visible()
    assert page.url.endswith(f"/t/{first.thread_id}/")
    assert Thread.objects.get(pk=first.thread_id).starred_count > 0
    press_key(page, "s")  # and unstars it: "Star / unstar", as the help says
    expect(page.get_by_role("button", name="Star", exact=True)).to_be_visible()
    assert Thread.objects.get(pk=first.thread_id).starred_count == 0

    press_key(page, "a")  # reply all, to the latest open message
    page.wait_for_url(re.compile(rf"/compose/\?reply_to={latest.id}&mode=reply_all$"))
    page.go_back()
    press_key(page, "f")
    page.wait_for_url(re.compile(rf"/compose/\?reply_to={latest.id}&mode=forward$"))
    page.go_back()
    for keys, where in (("g t", r"/search/\?q=in%3Asent$"), ("g d", r"/drafts/$")):  # no sidebar here
        for key in keys.split():
            press_key(page, key)
        page.wait_for_url(re.compile(where))
        page.go_back()
    press_key(page, "u")  # opened by address: back to the Inbox
    page.wait_for_url(re.compile(r"^http://[^/]+/$"))
    assert tripwire.console_errors == []


def test_thread_actions_follow_the_list_the_conversation_came_from(page, tripwire, mailbox, request):
    message = _deliver(mailbox, 0, thread="acts", text="Act on me")
    work = off_loop(user_label_create, mailbox=mailbox, name="Work", colour="#188038")
    off_loop(messages_label_add, mailbox=mailbox, message_ids=[message.id], label=work)
    thread_id = message.thread_id
    log_in(page, mailbox.address)
    page.goto(f"/label/{work.id}/")

    press_key(page, "j")
    press_key(page, "o")  # opens the conversation under the cursor, remembering the list
    page.wait_for_url(re.compile(rf"/t/{thread_id}/\?back=/label/{work.id}/$"))
    expect(page.get_by_role("link", name="← Work")).to_be_visible()
    chip = page.locator(".thread-labels .label-chip")
    expect(chip).to_have_text(re.compile("^Work"))
    screenshot(page, request.node.name, "conversation")

    page.get_by_role("button", name="Remove label Work").click()  # stays on the conversation
    expect(chip).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="Label removed.")).to_be_visible()
    _listening(page)
    press_key(page, "z")  # undo, as on lists
    expect(chip).to_have_text(re.compile("^Work"))
    assert off_loop(_label_ids, thread_id) >= {work.id}

    press_key(page, "u")  # back to the list it came from
    page.wait_for_url(re.compile(rf"^[^?]*/label/{work.id}/$"))
    _listening(page)
    press_key(page, "j")
    press_key(page, "Enter")
    page.wait_for_url(re.compile(rf"/t/{thread_id}/\?back=/label/{work.id}/$"))
    _listening(page)
    press_key(page, "#")  # delete: to Trash, and back to Work, where it no longer is
    page.wait_for_url(re.compile(rf"^[^?]*/label/{work.id}/$"))
    expect(page.locator(f"#thread-{thread_id}")).to_have_count(0)

    page.get_by_role("link", name=re.compile("^Trash")).click()
    page.locator(f"#thread-{thread_id} a.open").click()
    expect(page.get_by_role("button", name="Delete", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Restore").click()  # back to the Trash list, restored
    page.wait_for_url(re.compile(r"/label/\d+/$"))
    expect(page.locator(f"#thread-{thread_id}")).to_have_count(0)
    page.get_by_role("button", name="Undo").click()
    expect(page.locator(f"#thread-{thread_id}")).to_be_visible()
    page.locator(f"#thread-{thread_id} a.open").click()
    page.get_by_role("button", name="Restore").click()
    page.goto("/")
    expect(page.locator(f"#thread-{thread_id}")).to_be_visible()
    assert tripwire.console_errors == []
    assert tripwire.dialogs == []


def test_a_star_from_another_tab_redraws_the_conversations_star_button(page, tripwire, mailbox, request):
    message = _deliver(mailbox, 0, thread="starry", text="Star me elsewhere")
    off_loop(messages_mark_read, mailbox=mailbox, message_ids=[message.id])
    log_in(page, mailbox.address)
    list_tab = page
    conversation_tab = page.context.new_page()
    conversation_tab.goto(f"/t/{message.thread_id}/")
    expect(conversation_tab.locator("body")).to_have_attribute("data-live", "connected")
    conversation_tab.evaluate("window.__noReload = true")
    toolbar = conversation_tab.locator(".thread-actions.stay")
    expect(toolbar.get_by_role("button", name="Star", exact=True)).to_be_visible()
    row = list_tab.locator(f"#thread-{message.thread_id}")

    row.get_by_role("button", name="Star", exact=True).click()

    expect(toolbar.get_by_role("button", name="Unstar", exact=True)).to_have_attribute("aria-pressed", "true")
    screenshot(conversation_tab, request.node.name, "starred-elsewhere")
    row.get_by_role("button", name="Unstar", exact=True).click()
    expect(toolbar.get_by_role("button", name="Star", exact=True)).to_have_attribute("aria-pressed", "false")
    assert conversation_tab.evaluate("window.__noReload") is True
    conversation_tab.keyboard.press("s")  # the redrawn button is the one the shortcut presses
    expect(toolbar.get_by_role("button", name="Unstar", exact=True)).to_be_visible()
    assert Thread.objects.get(pk=message.thread_id).starred_count == 1
    assert tripwire.console_errors == []


def test_show_images_bar_only_on_messages_with_blocked_images(page, tripwire, mailbox):
    plain = _deliver(mailbox, 0, thread="imgs", html="<p>Just words</p>")
    _deliver(mailbox, 1, thread="imgs", html=f'<p>Pixel <img alt="remote" src="{REMOTE_IMAGE}"></p>')
    off_loop(messages_mark_read, mailbox=mailbox, message_ids=[plain.id])
    log_in(page, mailbox.address)
    page.goto(f"/t/{plain.thread_id}/")
    page.locator("details.message-card").nth(0).locator("summary").click()  # both bodies rendered once
    frames = page.frame_locator("iframe.message-body")
    expect(frames.nth(0).get_by_text("Just words")).to_be_visible()
    expect(frames.nth(1).get_by_role("link", name="Show images")).to_be_visible()

    page.reload()
    cards = page.locator("details.message-card")
    expect(cards.nth(1).get_by_role("link", name="Show remote images")).to_be_visible()
    expect(cards.nth(0).get_by_role("link", name="Show remote images")).to_have_count(0)
    assert tripwire.console_errors == []


def test_j_and_k_step_through_the_list_and_shift_i_marks_read(page, tripwire, mailbox):
    """j/k in a conversation open the next/previous conversation of the list it was opened from
    (the help says "Next / previous conversation"); Shift+I marks it read and stays."""
    oldest, middle, newest = (
        off_loop(
            message_import_raw,
            mailbox=mailbox,
            raw=raw_message(f"jk{n}@example.org", f"Step {n}", date=f"Mon, 02 Nov 2026 10:0{n}:00 +0000"),
            source_tag="test",
        ).message.thread_id
        for n in range(3)
    )
    log_in(page, mailbox.address)
    page.goto(f"/t/{middle}/")

    press_key(page, "j")  # the list is newest first: j goes down, to the older one
    page.wait_for_url(re.compile(rf"/t/{oldest}/$"))
    press_key(page, "k")
    page.wait_for_url(re.compile(rf"/t/{middle}/$"))
    press_key(page, "k")
    page.wait_for_url(re.compile(rf"/t/{newest}/$"))

    # Read by the page once shown; made unread again elsewhere, then Shift+I here.
    _wait_until(lambda: Thread.objects.get(pk=newest).unread_count == 0)
    off_loop(messages_mark_read, mailbox=mailbox, message_ids=_message_ids(newest), is_read=False)
    press_key(page, "Shift+I")
    expect(page.get_by_text("Marked as read")).to_be_visible(timeout=20_000)
    assert page.url.endswith(f"/t/{newest}/")
    assert Thread.objects.get(pk=newest).unread_count == 0
    assert tripwire.console_errors == []


def _message_ids(thread_id: int) -> list[int]:
    return list(Message.objects.filter(thread_id=thread_id).values_list("id", flat=True))


def _wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_bodys_frame_is_as_tall_as_its_text_within_limits(page, tripwire, mailbox, request):
    """The sandboxed body cannot be measured from the page: its frame takes the height the server
    estimated, so a two-line reply (its long quote folded) is short and a long message is tall."""
    quote = "\n".join(f"> line {i} of the message before" for i in range(40))
    short = _deliver(mailbox, 0, thread="short", text=f"Sounds good.\nSee you then.\n\nOn Mon, Carol wrote:\n{quote}\n")
    long = _deliver(mailbox, 0, thread="long", text="\n".join(f"Paragraph {i} of a long report." for i in range(60)))
    log_in(page, mailbox.address)
    page.set_viewport_size({"width": 360, "height": 740})

    heights = {}
    for message in (short, long):
        page.goto(f"/t/{message.thread_id}/")
        frame = page.locator("iframe.message-body")
        page.frame_locator("iframe.message-body").locator("body").wait_for()
        heights[message] = frame.bounding_box()["height"]
        screenshot(page, request.node.name, f"{message.thread_id}")

    assert heights[short] < 200
    assert heights[long] > 400
    assert heights[long] <= 740 * 0.6 + 1  # no taller than the default
    assert tripwire.dialogs == []
