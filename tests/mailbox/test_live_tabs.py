"""A browser tab's own changes and where its live updates start (``mailbox.live``): the tab id a
change carries into its domain events and live events, the catch-up that leaves the asking tab's
own changes out, and the cursor a conversation page is rendered with."""

import re

import pytest
from django.urls import reverse

from mailbox.live import TAB_HEADER, tab_id_clean
from mailbox.models import Message
from mailbox.selectors import live_cursor
from mailbox.services import message_import_raw, messages_mark_read, messages_star
from mailsite.models import DomainEvent
from tests.mail import raw_message
from tests.threads.builders import published_capture

pytestmark = pytest.mark.django_db
TAB = "0123456789abcdef01234567"
OTHER_TAB = "fedcba9876543210fedcba98"


@pytest.fixture
def published(monkeypatch):
    return published_capture(monkeypatch)


def _unread(mailbox, key: str) -> Message:
    return message_import_raw(mailbox=mailbox, raw=raw_message(f"{key}@x", f"Subject {key}"), source_tag="t").message


def _mark_read(client, message: Message, **headers):
    return client.post(
        reverse("thread_mark_read", args=[message.thread_id]),
        {"message": message.id},
        headers={"Accept": "application/json", **headers},
    )


@pytest.mark.parametrize("value", [TAB, "a1B2-c3_D4e5"])
def test_a_well_formed_tab_id_is_kept(value):
    assert tab_id_clean(value) == value


@pytest.mark.parametrize("value", [None, "", "short", "x" * 65, "tab id with spaces", "tab:nested0", "ünïcodeünïcode"])
def test_anything_else_names_no_tab(value):
    assert tab_id_clean(value) == ""


def test_a_mark_read_from_a_tab_names_it_in_the_event_and_the_live_update(
    client, mailbox, published, django_capture_on_commit_callbacks
):
    message = _unread(mailbox, "a")
    client.force_login(mailbox.user)

    with django_capture_on_commit_callbacks(execute=True):
        assert _mark_read(client, message, **{TAB_HEADER: TAB}).status_code == 204

    event = DomainEvent.objects.filter(mailbox_id=mailbox.id).latest("id")
    assert (event.event_type, event.source_tag) == (DomainEvent.Type.MESSAGES_READ, f"tab:{TAB}")
    assert published == [{"type": "thread.updated", "thread_id": message.thread_id, "event_id": event.id, "tab": TAB}]


@pytest.mark.parametrize("action", ["star", "unstar"])
def test_a_star_from_a_list_tab_names_it_in_the_event_and_the_live_update(
    client, mailbox, published, django_capture_on_commit_callbacks, action
):
    """The list's star button toggles in place and redraws its row itself (app.js)."""
    message = _unread(mailbox, "a")
    if action == "unstar":
        messages_star(mailbox=mailbox, message_ids=[message.id])
    client.force_login(mailbox.user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("threads_action"),
            {"action": action, "thread": message.thread_id},
            headers={"Accept": "application/json", TAB_HEADER: TAB},
        )

    assert response.json()["ok"]
    event = DomainEvent.objects.filter(mailbox_id=mailbox.id).latest("id")
    assert (event.event_type, event.source_tag) == (f"messages.{action}red", f"tab:{TAB}")
    assert published[-1] == {"type": "thread.updated", "thread_id": message.thread_id, "event_id": event.id, "tab": TAB}


@pytest.mark.parametrize("headers", [{}, {TAB_HEADER: "not a tab id"}])
def test_a_mark_read_from_no_tab_is_everyones_change(
    client, mailbox, published, django_capture_on_commit_callbacks, headers
):
    message = _unread(mailbox, "a")
    client.force_login(mailbox.user)

    with django_capture_on_commit_callbacks(execute=True):
        assert _mark_read(client, message, **headers).status_code == 204

    event = DomainEvent.objects.filter(mailbox_id=mailbox.id).latest("id")
    assert event.source_tag == ""
    assert published == [{"type": "thread.updated", "thread_id": message.thread_id, "event_id": event.id}]


@pytest.mark.django_db(transaction=True)  # the catch-up's cursor tells committed transactions apart
def test_the_catch_up_leaves_out_the_asking_tabs_own_changes_only(client, mailbox):
    mine, theirs = _unread(mailbox, "mine"), _unread(mailbox, "theirs")
    client.force_login(mailbox.user)
    after = live_cursor()
    _mark_read(client, mine, **{TAB_HEADER: TAB})
    _mark_read(client, theirs, **{TAB_HEADER: OTHER_TAB})
    theirs_read = DomainEvent.objects.filter(mailbox_id=mailbox.id).latest("id").id

    def catch_up(**tab):
        return client.get(reverse("events_since"), {"after": after, **tab}).json()

    answer = catch_up(tab=TAB)
    assert answer == {
        "threads": [theirs.thread_id],
        "labels_deleted": [],
        "labels_changed": [],
        "latest": answer["latest"],
        "complete": True,
        "thread_events": {str(theirs.thread_id): [theirs_read]},
    }
    assert client.get(reverse("events_since"), {"after": answer["latest"]}).json()["threads"] == []
    assert catch_up(tab=OTHER_TAB)["threads"] == [mine.thread_id]
    assert catch_up()["threads"] == sorted([mine.thread_id, theirs.thread_id])
    assert catch_up(tab="no good")["threads"] == sorted([mine.thread_id, theirs.thread_id])


@pytest.mark.django_db(transaction=True)
def test_another_tabs_change_to_the_same_thread_is_still_caught_up(client, mailbox):
    message = _unread(mailbox, "a")
    client.force_login(mailbox.user)
    after = live_cursor()
    _mark_read(client, message, **{TAB_HEADER: TAB})
    messages_mark_read(mailbox=mailbox, message_ids=[message.id], is_read=False)  # elsewhere

    answer = client.get(reverse("events_since"), {"after": after, "tab": TAB}).json()

    assert answer["threads"] == [message.thread_id]


@pytest.mark.django_db(transaction=True)
def test_a_conversation_page_carries_the_cursor_of_its_render(client, mailbox):
    message = _unread(mailbox, "a")
    _unread(mailbox, "earlier")  # shown by the page: its catch-up does not name it
    client.force_login(mailbox.user)

    html = client.get(reverse("thread_detail", args=[message.thread_id])).content.decode()
    cursor = re.search(r'<main class="conversation"[^>]* data-live-cursor="([\d:,]+)"', html).group(1)
    later = _unread(mailbox, "later")

    answer = client.get(reverse("events_since"), {"after": cursor}).json()
    assert answer["threads"] == [later.thread_id]
