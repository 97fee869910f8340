"""The thread list in a real browser: star, label, archive and undo, bulk selection, keyboard
shortcuts, the phone layout, and live updates — in process and from another process over Redis."""

import json
import os
import re
import statistics
import subprocess
import sys
import time

import pytest
from playwright.sync_api import expect

from mailbox.models import Label, ThreadLabel
from mailbox.services import message_import_raw, messages_label_add, messages_mark_read, messages_star
from mailbox.services.preferences import mailbox_settings_update, user_label_create
from tests.celery_workers import worker_env
from tests.conftest import REPO_ROOT, requires_redis
from tests.e2e.conftest import log_in, off_loop, press_key, screenshot, socket_events, wait_until
from tests.mail import raw_message
from threads.models import Thread

# The webhook → worker → browser test: enough warm rounds for a p95 that is not simply the maximum
# (LIVE_UPDATE_ROUNDS=41 for the figure the README quotes). A list page holds 50 rows.
WORKER_ROUNDS = min(int(os.environ.get("LIVE_UPDATE_ROUNDS", "21")), 50)
CATCH_UP = re.compile(r"/events/\?after=[\d%A-F]+&tab=[0-9a-f]+$")
# Records each key press once every handler of the page has seen it, and whether one took it as a
# shortcut (they all call preventDefault on the keys they act on).
KEYS_SEEN_JS = """
window.__keys = [];
window.addEventListener("keydown", (e) => { window.__keys.push(e.key + (e.defaultPrevented ? ":taken" : "")); });
"""


def _deliver(mailbox, key: str, subject: str, minute: int = 0):
    raw = raw_message(f"{key}@example.org", subject, date=f"Mon, 02 Nov 2026 10:{minute:02d}:00 +0000")
    return off_loop(message_import_raw, mailbox=mailbox, raw=raw, source_tag="test").message


def _row(page, thread_id: int):
    return page.locator(f"#thread-{thread_id}")


def _in_inbox(mailbox, thread_id: int) -> bool:
    return ThreadLabel.objects.filter(thread_id=thread_id, label__mailbox=mailbox, label__role="inbox").exists()


def test_star_label_archive_and_undo(page, tripwire, mailbox, request):
    first = _deliver(mailbox, "a", "Quarterly numbers", 1)
    second = _deliver(mailbox, "b", "Team lunch", 2)
    off_loop(user_label_create, mailbox=mailbox, name="Finance", colour="#188038")
    log_in(page, mailbox.address)
    expect(page).to_have_title(re.compile(r"^Inbox \(2\)"))

    _row(page, first.thread_id).get_by_role("button", name="Star").click()
    expect(_row(page, first.thread_id).get_by_role("button", name="Unstar")).to_be_visible()
    assert Thread.objects.get(pk=first.thread_id).starred_count == 1

    _row(page, first.thread_id).locator("input.select").check()
    page.get_by_label("Label", exact=True).select_option(label="Finance")
    page.get_by_role("button", name="Apply label").click()
    expect(_row(page, first.thread_id).locator(".label-chip")).to_have_text("Finance")

    _row(page, second.thread_id).locator("input.select").check()
    page.get_by_role("button", name="Archive").click()
    expect(_row(page, second.thread_id)).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="Archived.")).to_be_visible()
    screenshot(page, request.node.name, "archived")

    page.get_by_role("button", name="Undo").click()
    expect(_row(page, second.thread_id)).to_be_visible()
    assert _in_inbox(mailbox, second.thread_id)
    assert tripwire.dialogs == []
    assert tripwire.console_errors == []


def test_bulk_selection_marks_read_and_select_all(page, tripwire, mailbox):
    threads = [_deliver(mailbox, f"m{n}", f"Bulk {n}", n).thread_id for n in range(3)]
    log_in(page, mailbox.address)
    expect(page.get_by_role("button", name="Mark read")).to_be_disabled()

    page.locator("#select-all").check()
    expect(page.locator("input.select:checked")).to_have_count(3)
    page.get_by_role("button", name="Mark read").click()

    expect(page.locator("li.thread.unread")).to_have_count(0)
    expect(page).to_have_title(re.compile(r"^Inbox · "))
    assert sum(Thread.objects.get(pk=t).unread_count for t in threads) == 0
    assert tripwire.console_errors == []


def test_keyboard_shortcuts(page, tripwire, mailbox):
    newest = _deliver(mailbox, "k2", "Newest", 2)
    older = _deliver(mailbox, "k1", "Older", 1)
    log_in(page, mailbox.address)
    page.evaluate(KEYS_SEEN_JS)

    press_key(page, "j")
    expect(_row(page, newest.thread_id)).to_have_class(re.compile("cursor"))
    assert page.evaluate("window.__keys") == ["j:taken"]  # what the shortcuts-off test tells apart
    press_key(page, "j")
    expect(_row(page, older.thread_id)).to_have_class(re.compile("cursor"))
    press_key(page, "k")
    expect(_row(page, newest.thread_id)).to_have_class(re.compile("cursor"))

    press_key(page, "s")
    expect(_row(page, newest.thread_id).get_by_role("button", name="Unstar")).to_be_visible()
    press_key(page, "x")
    expect(_row(page, newest.thread_id).locator("input.select")).to_be_checked()
    press_key(page, "e")
    expect(_row(page, newest.thread_id)).to_have_count(0)
    assert not _in_inbox(mailbox, newest.thread_id)
    _wait_for_socket(page)  # the page the archive reloaded listens for keys (z pressed sooner is lost)
    press_key(page, "z")
    expect(_row(page, newest.thread_id)).to_be_visible()

    press_key(page, "?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    press_key(page, "Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()

    press_key(page, "/")
    expect(page.get_by_label("Search mail")).to_be_focused()
    page.keyboard.type("jk#e")  # typing in a field triggers nothing
    expect(page.get_by_label("Search mail")).to_have_value("jk#e")
    assert _in_inbox(mailbox, older.thread_id)

    page.locator("body").click(position={"x": 5, "y": 300})
    press_key(page, "g")
    press_key(page, "s")
    page.wait_for_url(re.compile(r"/starred/$"))
    expect(_row(page, newest.thread_id)).to_be_visible()
    assert tripwire.console_errors == []


def test_keyboard_shortcuts_open_read_delete_and_go(page, tripwire, mailbox):
    newest = _deliver(mailbox, "g2", "Newest", 2)
    older = _deliver(mailbox, "g1", "Older", 1)
    log_in(page, mailbox.address)

    press_key(page, "j")
    press_key(page, "Enter")  # opens the conversation under the cursor
    page.wait_for_url(re.compile(rf"/t/{newest.thread_id}/$"))
    press_key(page, "u")  # and back to the list
    page.wait_for_url(re.compile(r"^http://[^/]+/$"))
    press_key(page, "j")
    press_key(page, "j")
    press_key(page, "o")
    page.wait_for_url(re.compile(rf"/t/{older.thread_id}/$"))
    page.go_back()

    press_key(page, "j")
    press_key(page, "Shift+I")  # mark read
    expect(_row(page, newest.thread_id)).not_to_have_class(re.compile(r"\bunread\b"))
    assert Thread.objects.get(pk=newest.thread_id).unread_count == 0
    press_key(page, "j")
    press_key(page, "Shift+U")  # mark unread
    expect(_row(page, newest.thread_id)).to_have_class(re.compile(r"\bunread\b"))
    assert Thread.objects.get(pk=newest.thread_id).unread_count == 1

    press_key(page, "j")
    press_key(page, "#")  # delete: to Trash
    expect(_row(page, newest.thread_id)).to_have_count(0)
    trash = Label.objects.get(mailbox=mailbox, role=Label.Role.TRASH)
    assert ThreadLabel.objects.filter(thread_id=newest.thread_id, label=trash).exists()
    assert not _in_inbox(mailbox, newest.thread_id)

    press_key(page, "c")
    page.wait_for_url(re.compile(r"/compose/$"))
    page.goto("/")
    sent = Label.objects.get(mailbox=mailbox, role=Label.Role.SENT)
    for keys, where in (("g t", rf"/label/{sent.id}/$"), ("g d", r"/drafts/$"), ("g i", r"^http://[^/]+/$")):
        for key in keys.split():
            press_key(page, key)
        page.wait_for_url(re.compile(where))
    expect(_row(page, older.thread_id)).to_be_visible()
    assert tripwire.console_errors == []


def test_shortcuts_are_off_when_disabled_in_settings(page, mailbox):
    thread = _deliver(mailbox, "off", "Keep me", 1)
    mailbox_settings_update(mailbox=mailbox, display_name="", keyboard_shortcuts=False)
    log_in(page, mailbox.address)
    expect(page.locator("body")).to_have_attribute("data-live", "connected")  # app.js has run
    page.evaluate(KEYS_SEEN_JS)
    press_key(page, "j")
    press_key(page, "e")
    # This listener runs after the page's own (on document): both keys went past them untaken.
    page.wait_for_function("window.__keys.length === 2")
    assert page.evaluate("window.__keys") == ["j", "e"]
    assert page.locator("li.thread.cursor").count() == 0
    assert _in_inbox(mailbox, thread.thread_id)


def test_phone_width_layout(page, tripwire, mailbox, request):
    messages = [
        _deliver(mailbox, f"p{n}", f"A long subject line that must wrap on a phone number {n}", n) for n in range(4)
    ]
    reply = raw_message(
        "p3r@example.org", "Re: p3", in_reply_to="p3@example.org", date="Mon, 02 Nov 2026 10:05:00 +0000"
    )
    off_loop(message_import_raw, mailbox=mailbox, raw=reply, source_tag="test")
    work = off_loop(user_label_create, mailbox=mailbox, name="Work", colour="#188038")
    off_loop(messages_label_add, mailbox=mailbox, message_ids=[messages[-1].id], label=work)
    page.set_viewport_size({"width": 360, "height": 740})
    log_in(page, mailbox.address)
    width = page.evaluate("document.documentElement.scrollWidth")
    path = screenshot(page, request.node.name, "360px")
    assert width <= 360, f"the page scrolls sideways at 360 px ({width} px wide)"
    assert path.exists()
    first = page.locator("li.thread").first
    top = first.bounding_box()["y"]
    assert top < 740 / 2, f"the first conversation starts at y={top}, below the top half of the screen"
    expect(first.locator(".label-chip", has_text="Work")).to_be_visible()
    expect(first.locator(".count")).to_have_text("2")
    expect(first.locator(".count")).to_be_visible()
    # The bulk actions show once something is selected (the select-all box is always there).
    trash = page.locator("#bulk button[value=trash]")
    expect(trash).to_be_hidden()
    first.locator("input.select").check()
    expect(trash).to_be_visible()
    screenshot(page, request.node.name, "360px-selected")
    first.locator("input.select").uncheck()
    expect(trash).to_be_hidden()
    press_key(page, "Tab")
    press_key(page, "Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def _wait_for_socket(page) -> None:
    expect(page.locator("body")).to_have_attribute("data-live", "connected")


def test_live_updates_in_place_without_reload(page, tripwire, mailbox):
    kept = _deliver(mailbox, "l1", "Already here", 1)
    log_in(page, mailbox.address)
    _wait_for_socket(page)
    page.evaluate("window.__noReload = true")

    arrived = _deliver(mailbox, "l2", "Arrived while open", 5)
    expect(_row(page, arrived.thread_id)).to_be_visible()
    expect(page).to_have_title(re.compile(r"^Inbox \(2\)"))
    assert page.locator("li.thread").first.get_attribute("id") == f"thread-{arrived.thread_id}"

    off_loop(messages_mark_read, mailbox=mailbox, message_ids=[kept.id])
    expect(_row(page, kept.thread_id)).not_to_have_class(re.compile("unread"))
    expect(page).to_have_title(re.compile(r"^Inbox \(1\)"))

    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    from mailbox.services import messages_label_remove

    off_loop(messages_label_remove, mailbox=mailbox, message_ids=[kept.id], label=inbox)
    expect(_row(page, kept.thread_id)).to_have_count(0)
    assert page.evaluate("window.__noReload") is True
    assert tripwire.console_errors == []


def test_a_star_toggled_in_the_list_fetches_its_row_once(page, tripwire, mailbox):
    """The star's own answer redraws the row; its live event, which names this tab, fetches
    nothing more."""
    message = _deliver(mailbox, "a", "Quarterly numbers", 1)
    events = socket_events(page)  # the inbox's socket opens as logging in lands there
    log_in(page, mailbox.address)
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    row_fetches: list[str] = []
    page.on("request", lambda req: f"/t/{message.thread_id}/row/" in req.url and row_fetches.append(req.url))

    for action, after in (("Star", "Unstar"), ("Unstar", "Star")):
        row_fetches.clear()
        heard = len(events)
        _row(page, message.thread_id).get_by_role("button", name=action, exact=True).click()
        expect(_row(page, message.thread_id).get_by_role("button", name=after, exact=True)).to_be_visible()
        wait_until(page, lambda heard=heard: any(e.get("thread_id") == message.thread_id for e in events[heard:]))
        page.wait_for_timeout(300)  # time enough for a fetch the event would start
        assert len(row_fetches) == 1, row_fetches
    assert all("tab" in e for e in events)  # the live events named the tab that starred
    assert tripwire.console_errors == []


def test_a_reconnecting_tab_catches_up_from_the_event_log(page, tripwire, mailbox):
    """The first socket is held by the test (the server never hears of it), so the event of mail
    delivered meanwhile is lost to the tab; when that socket drops, the tab reconnects and
    catches up from the domain event log."""
    held = []
    live = {"on": False}

    def route(ws) -> None:
        if live["on"]:
            ws.connect_to_server()
        else:
            held.append(ws)

    page.route_web_socket(re.compile(r"/ws/mailbox/$"), route)
    # The catch-up of the first socket's opening is over before the mail arrives (else it could
    # bring the mail itself); from then on the tab has no way to hear of it.
    with page.expect_response(CATCH_UP) as first_catch_up:
        log_in(page, mailbox.address)
    assert first_catch_up.value.json()["threads"] == []
    _wait_for_socket(page)
    missed = _deliver(mailbox, "missed", "Missed while away", 3)
    expect(_row(page, missed.thread_id)).to_have_count(0)

    live["on"] = True
    with page.expect_response(CATCH_UP) as catch_up:
        held[0].close()
    assert missed.thread_id in catch_up.value.json()["threads"]  # the reconnection's catch-up brought it
    expect(_row(page, missed.thread_id)).to_be_visible()
    expect(page).to_have_title(re.compile(r"^Inbox \(1\)"))
    assert tripwire.console_errors == []


def test_a_reconnecting_tab_does_not_refetch_what_it_heard_live(page, tripwire, mailbox):
    """Only a catch-up moves a tab's cursor, so the reconnection's catch-up names the thread the
    tab heard of live meanwhile, with that event's id: the row is not fetched again."""
    sockets = []

    def route(ws) -> None:
        sockets.append(ws)
        ws.connect_to_server()

    page.route_web_socket(re.compile(r"/ws/mailbox/$"), route)
    log_in(page, mailbox.address)
    _wait_for_socket(page)
    row_fetches: list[str] = []
    page.on("request", lambda req: "/row/" in req.url and row_fetches.append(req.url))
    heard = _deliver(mailbox, "heard", "Heard live", 3)
    expect(_row(page, heard.thread_id)).to_be_visible()
    assert len(row_fetches) == 1

    with page.expect_response(CATCH_UP) as catch_up:
        sockets[0].close()
    answer = catch_up.value.json()
    assert answer["threads"] == [heard.thread_id]  # the cursor did not move past it
    page.wait_for_timeout(300)  # time enough for a fetch the answer would start
    assert len(row_fetches) == 1
    assert tripwire.console_errors == []


def test_a_tab_that_heard_many_events_catches_up_only_to_move_its_cursor(page, tripwire, mailbox):
    message = _deliver(mailbox, "busy", "Busy thread", 1)
    with page.expect_response(CATCH_UP):  # the first opening's, out of the way
        log_in(page, mailbox.address)
    cursor = page.locator("body").get_attribute("data-live-cursor")

    with page.expect_response(CATCH_UP, timeout=60_000) as catch_up:  # the 100th event heard asks, no reconnection
        for starred in [True, False] * 50:
            off_loop(messages_star, mailbox=mailbox, message_ids=[message.id], is_starred=starred)

    assert catch_up.value.json()["threads"] == [message.thread_id]
    expect(page.locator("body")).not_to_have_attribute("data-live-cursor", cursor)
    assert page.locator("body").get_attribute("data-live") == "connected"
    assert tripwire.console_errors == []


@requires_redis
@pytest.mark.real_broker
def test_a_webhook_handled_by_a_celery_worker_appears_without_reload(
    page, tripwire, mailbox, tmp_path, settings, start_worker, broker
):
    """The path of production: a web process answers the webhook and queues the parse on the broker;
    a Celery worker process ingests the message; the Redis channel layer carries its event to this
    ASGI web process, which pushes it to the browser. Prints the delay, POST to row on screen."""
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    # The worker's channel layer is this process's Redis; its tasks come from the private broker.
    start_worker("ingest", redis_url=os.environ["REDIS_URL"])
    log_in(page, mailbox.address)
    _wait_for_socket(page)
    env = worker_env(
        tmp_path,
        broker.url,
        redis_url=os.environ["REDIS_URL"],
        DJANGO_SETTINGS_MODULE="mailsite.settings",
        CELERY_TASK_ALWAYS_EAGER="0",
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="0",
        ANYMAIL_WEBHOOK_SECRET="e2e:webhook-secret",  # the poster sends it: webhooks fail closed without
        LOG_LEVEL="WARNING",
    )
    page.evaluate(
        """() => {
          window.__seen = {};
          new MutationObserver(() => document.querySelectorAll("li.thread").forEach((li) => {
            window.__seen[li.id] = window.__seen[li.id] || Date.now() / 1000;
          })).observe(document.getElementById("thread-list"), { childList: true });
        }"""
    )
    command = [sys.executable, "-m", "tests.e2e.post_inbound_webhook", mailbox.address]
    poster = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    delays, poster_cpu, web_cpu = [], [], []
    try:
        for n in range(WORKER_ROUNDS):
            subject = f"From another process {n}"
            cpu_before = time.process_time()
            poster.stdin.write(f"{subject}\txproc-{n}@example.org\n")
            answer = json.loads(poster.stdout.readline())
            assert answer["status"] == 200
            row = page.locator("li.thread", has_text=subject)
            expect(row).to_be_visible(timeout=30_000)
            # When the row went in, by the browser's clock (the same machine's as the poster's).
            seen_at = page.evaluate("(id) => window.__seen[id]", row.get_attribute("id"))
            delays.append(seen_at - answer["posted_at"])
            poster_cpu.append(answer["cpu"])
            web_cpu.append(time.process_time() - cpu_before)
    finally:
        poster.stdin.close()
        poster.wait(timeout=30)
    warm = sorted(delays[1:])
    p95 = statistics.quantiles(warm, n=20, method="inclusive")[-1] if len(warm) > 1 else warm[-1]
    print(
        f"\nlive update delay, webhook POST → Celery worker → Redis → row on screen: first (cold processes) "
        f"{delays[0] * 1000:.0f} ms; warm p50 {statistics.median(warm) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {warm[-1] * 1000:.0f} ms over {len(warm)}; CPU per warm update: "
        f"poster (webhook) {statistics.median(poster_cpu[1:]) * 1000:.0f} ms, "
        f"this process (ASGI server: push, row fetch; and Playwright's client) "
        f"{statistics.median(web_cpu[1:]) * 1000:.0f} ms (medians); load average {os.getloadavg()[0]:.1f}"
    )
    assert page.locator("li.thread").count() == WORKER_ROUNDS
    # Parsed by the worker, not by the process that answered the webhook.
    parsed = re.findall(r"Task mailbox\.receipt_process\[[^\]]+\] succeeded", (tmp_path / "ingest.log").read_text())
    assert len(parsed) == WORKER_ROUNDS
    assert tripwire.console_errors == []
