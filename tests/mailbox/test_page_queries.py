"""The pages and fragments around the thread lists cost a fixed number of queries, however many
drafts, labels, chips or events they show: each is asked once with 5 and once with 50."""

from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailbox.models import Label
from mailbox.selectors import live_cursor
from mailbox.services import message_import_raw, messages_mark_read
from mailbox.services.bulk import threads_action_apply
from mailbox.services.drafts import DraftFields, draft_create
from mailbox.services.images import remote_images_always_for_sender
from mailbox.services.preferences import user_label_create, user_label_delete, user_label_update
from tests.mail import raw_message

pytestmark = pytest.mark.django_db

FEW, MANY = 5, 50


def _queries(client, url: str) -> list[str]:
    """The statements of one GET, but the session's (read from the cache when there is one)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return [q["sql"] for q in captured.captured_queries if "django_session" not in q["sql"]]


def _same_for_few_and_many(client, url: Callable[[], str], fill: Callable[[int, int], None]) -> None:
    """``fill(start, stop)`` adds items ``start`` to ``stop - 1``; the page is read with FEW, then MANY."""
    fill(0, FEW)
    few = _queries(client, url())
    fill(FEW, MANY)
    many = _queries(client, url())
    assert len(few) == len(many), (few, many)


def _labels(mailbox, start: int, stop: int) -> list[Label]:
    return [user_label_create(mailbox=mailbox, name=f"Label {n}", colour="#188038") for n in range(start, stop)]


def _thread(mailbox, n: int = 0) -> int:
    raw = raw_message(f"pq{n}@example.org", f"Subject {n}")
    return message_import_raw(mailbox=mailbox, raw=raw, source_tag="test").message.thread_id


def test_drafts_page(client, mailbox):
    client.force_login(mailbox.user)

    def fill(start: int, stop: int) -> None:
        for n in range(start, stop):
            draft_create(mailbox=mailbox, fields=DraftFields(to="carol@example.org", subject=f"Draft {n}", body="b"))

    _same_for_few_and_many(client, lambda: reverse("drafts"), fill)


def test_labels_page(client, mailbox):
    client.force_login(mailbox.user)
    _same_for_few_and_many(client, lambda: reverse("labels"), lambda start, stop: _labels(mailbox, start, stop))


def test_labels_sidebar(client, mailbox):
    """Labels with unread threads in them, as the sidebar counts them."""
    thread_id = _thread(mailbox)
    client.force_login(mailbox.user)

    def fill(start: int, stop: int) -> None:
        for label in _labels(mailbox, start, stop):
            threads_action_apply(mailbox=mailbox, action="add_label", thread_ids=[thread_id], label=label)

    url = lambda: reverse("labels_sidebar") + "?current=inbox"  # noqa: E731
    _same_for_few_and_many(client, url, fill)


def test_thread_row(client, mailbox):
    """A row with 5, then 50 label chips."""
    thread_id = _thread(mailbox)
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    client.force_login(mailbox.user)

    def fill(start: int, stop: int) -> None:
        for label in _labels(mailbox, start, stop):
            threads_action_apply(mailbox=mailbox, action="add_label", thread_ids=[thread_id], label=label)

    url = lambda: reverse("thread_row", args=[thread_id]) + f"?label={inbox.id}&back=/"  # noqa: E731
    _same_for_few_and_many(client, url, fill)
    assert client.get(url()).content.decode().count("label-chip") == MANY


def test_events_since(client, mailbox):
    """Events of every kind: mail delivered, flags changed, labels created, renamed and deleted."""
    client.force_login(mailbox.user)
    url = reverse("events_since") + "?" + urlencode({"after": live_cursor()})  # a tab's cursor from before them all

    def fill(start: int, stop: int) -> None:
        for n in range(start, stop):
            kind = n % 4
            if kind == 0:
                _thread(mailbox, n)
            elif kind == 1:
                delivered = message_import_raw(
                    mailbox=mailbox, raw=raw_message(f"ev{n}@example.org", f"Read {n}"), source_tag="test"
                )
                messages_mark_read(mailbox=mailbox, message_ids=[delivered.message.id])
            elif kind == 2:
                (label,) = _labels(mailbox, n, n + 1)
                user_label_update(label=label, name=f"Renamed {n}", colour="")
            else:
                (label,) = _labels(mailbox, n, n + 1)
                user_label_delete(label=label)

    _same_for_few_and_many(client, lambda: url, fill)
    answer = client.get(url).json()
    assert len(answer["threads"]) == sum(n % 4 in (0, 1) for n in range(MANY))
    assert answer["labels_changed"]
    assert answer["labels_deleted"]


def test_settings_page(client, mailbox):
    """However many labels and senders whose images are always shown."""
    client.force_login(mailbox.user)

    def fill(start: int, stop: int) -> None:
        _labels(mailbox, start, stop)
        for n in range(start, stop):
            remote_images_always_for_sender(mailbox=mailbox, address=f"sender{n}@example.org")

    _same_for_few_and_many(client, lambda: reverse("settings"), fill)
