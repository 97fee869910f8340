"""Live updates at the edges of a page's life, in a real browser: changes made between the page's
render and its websocket's first join are caught up from the domain event log (a conversation and
a list alike), and a conversation tab's own mark-read comes back as a change it already shows,
over the socket or in its catch-up, without a refetch."""

import re
import time

from playwright.sync_api import expect

from mailbox.models import Message
from mailbox.services import message_import_raw, messages_mark_read, thread_merge
from mailbox.services.preferences import user_label_create
from mailsite.models import DomainEvent
from tests.e2e.conftest import log_in, off_loop, socket_events, wait_until
from tests.mailbox.conversation_mail import conversation_message

SOCKET = re.compile(r"/ws/mailbox/$")
CATCH_UP = re.compile(r"/events/\?after=[\d%A-F]+&tab=[0-9a-f]+$")


def _deliver(mailbox, n: int, thread: str = "conv"):
    raw = conversation_message(n, to=mailbox.address, thread=thread)
    return off_loop(message_import_raw, mailbox=mailbox, raw=raw, source_tag="test").message


def _join_after(page, change) -> None:
    """Let the page's first socket reach the server only once ``change`` has been made: whatever
    it publishes reaches no tab of this page, which has been rendered already. Later sockets (of
    the page a redirect lands on) join at once."""

    page.goto("about:blank")  # the inbox that logging in opened must not take the change
    pending = [change]

    def route(ws) -> None:
        if pending:
            pending.pop()()
        ws.connect_to_server()

    page.route_web_socket(SOCKET, route)


def _conversation_fetches(page, thread_id: int) -> list[str]:
    """The page's own fetches of the conversation (a refresh), not the navigation that loaded it."""
    fetches: list[str] = []
    path = f"/t/{thread_id}/"
    page.on(
        "request",
        lambda req: (
            req.method == "GET" and req.resource_type == "fetch" and req.url.endswith(path) and fetches.append(req.url)
        ),
    )
    return fetches


def _latest_event_id(mailbox) -> int:
    return DomainEvent.objects.filter(mailbox_id=mailbox.id).latest("id").id


def test_a_conversation_catches_up_on_mail_that_arrived_before_its_first_connect(page, tripwire, mailbox):
    first = _deliver(mailbox, 0)
    off_loop(messages_mark_read, mailbox=mailbox, message_ids=[first.id])
    log_in(page, mailbox.address)
    arrived = {}
    _join_after(page, lambda: arrived.setdefault("reply", _deliver(mailbox, 1)))

    page.goto(f"/t/{first.thread_id}/")
    page.evaluate("window.__noReload = true")

    reply = arrived["reply"]
    assert reply.thread_id == first.thread_id
    expect(page.locator(f"#m-{reply.id}")).to_be_visible()
    expect(page.locator(".conversation-head .count")).to_have_text("2 messages")
    assert page.evaluate("window.__noReload") is True
    assert tripwire.console_errors == []


def test_a_conversation_merged_away_before_its_first_connect_moves_to_the_survivor(page, tripwire, mailbox):
    gone = _deliver(mailbox, 0, thread="gone")
    kept = _deliver(mailbox, 0, thread="kept")
    off_loop(messages_mark_read, mailbox=mailbox, message_ids=[gone.id, kept.id])
    log_in(page, mailbox.address)
    _join_after(
        page,
        lambda: off_loop(thread_merge, mailbox=mailbox, thread_ids=[gone.thread_id], into_thread_id=kept.thread_id),
    )

    page.goto(f"/t/{gone.thread_id}/")

    page.wait_for_url(re.compile(rf"/t/{kept.thread_id}/$"))
    expect(page.locator(f"#m-{gone.id}")).to_be_visible()
    assert tripwire.console_errors == []


def test_a_list_catches_up_on_mail_that_arrived_before_its_first_connect(page, tripwire, mailbox):
    log_in(page, mailbox.address)
    arrived = {}
    _join_after(page, lambda: arrived.setdefault("mail", _deliver(mailbox, 0)))

    with page.expect_response(CATCH_UP) as catch_up:
        page.goto("/")

    mail = arrived["mail"]
    assert mail.thread_id in catch_up.value.json()["threads"]
    expect(page.locator(f"#thread-{mail.thread_id}")).to_be_visible()
    assert tripwire.console_errors == []


def test_the_tabs_own_mark_read_pushed_back_to_it_refetches_nothing(page, tripwire, mailbox):
    """The mark-read is held until the socket has joined and caught up, so its event comes back
    over the socket; another tab's change to the same conversation still refreshes it."""
    message = _deliver(mailbox, 0)
    log_in(page, mailbox.address)
    held = []
    page.goto("about:blank")
    page.route(re.compile(rf"/t/{message.thread_id}/read/$"), lambda route: held.append(route))
    fetches = _conversation_fetches(page, message.thread_id)
    events = socket_events(page)
    with page.expect_response(CATCH_UP):
        page.goto(f"/t/{message.thread_id}/")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")

    held[0].continue_()
    main = page.locator("main.conversation")
    cursor = main.get_attribute("data-live-cursor")
    expect(main).to_have_attribute("data-mark-read", "done")
    assert Message.objects.get(pk=message.id).is_read
    read_event = _latest_event_id(mailbox)
    assert DomainEvent.objects.get(pk=read_event).source_tag.startswith("tab:")
    wait_until(page, lambda: any(e.get("event_id") == read_event for e in events))
    assert main.get_attribute("data-live-cursor") == cursor  # heard and let be; only a catch-up moves the cursor
    assert fetches == []

    with page.expect_request(lambda req: req.resource_type == "fetch" and req.url.endswith(f"/t/{message.thread_id}/")):
        off_loop(messages_mark_read, mailbox=mailbox, message_ids=[message.id], is_read=False)
    assert len(fetches) == 1
    assert tripwire.console_errors == []


def test_the_tabs_own_mark_read_found_in_its_first_catch_up_refetches_nothing(page, tripwire, mailbox):
    """The socket joins only once the mark-read has committed: the tab hears of it from the log."""
    message = _deliver(mailbox, 0)
    log_in(page, mailbox.address)
    _join_after(page, lambda: _wait_until(lambda: Message.objects.get(pk=message.id).is_read))
    fetches = _conversation_fetches(page, message.thread_id)

    with page.expect_response(CATCH_UP) as catch_up:
        page.goto(f"/t/{message.thread_id}/")

    answer = catch_up.value.json()
    assert answer["threads"] == []
    expect(page.locator("main.conversation")).to_have_attribute("data-live-cursor", answer["latest"])
    expect(page.locator("main.conversation")).to_have_attribute("data-mark-read", "done")
    assert fetches == []
    assert tripwire.console_errors == []


def test_a_conversation_refetches_itself_once_for_a_catch_up_naming_it_and_a_label(page, tripwire, mailbox):
    """Mail for the conversation and a new label, both before the first connect: one fetch of the
    page brings the message, the chips and the label menus."""
    first = _deliver(mailbox, 0)
    off_loop(messages_mark_read, mailbox=mailbox, message_ids=[first.id])
    log_in(page, mailbox.address)
    arrived = {}

    def changes() -> None:
        arrived["reply"] = _deliver(mailbox, 1)
        off_loop(user_label_create, mailbox=mailbox, name="Receipts")

    _join_after(page, changes)
    fetches = _conversation_fetches(page, first.thread_id)

    with page.expect_response(CATCH_UP) as catch_up:
        page.goto(f"/t/{first.thread_id}/")

    answer = catch_up.value.json()
    assert (answer["threads"], len(answer["labels_changed"])) == ([first.thread_id], 1)
    expect(page.locator(f"#m-{arrived['reply'].id}")).to_be_visible()
    expect(page.locator("#thread-label option", has_text="Receipts")).to_have_count(1)
    page.wait_for_timeout(300)  # time enough for a second fetch to start
    assert len(fetches) == 1, fetches
    assert tripwire.console_errors == []


def _wait_until(condition, timeout: float = 10) -> None:
    """Poll the database (the browser and the server go on meanwhile: they are other threads)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
