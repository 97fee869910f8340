"""The live updates' cursor against commit order (``selectors.live_cursor``): an event whose id was
drawn before another's but whose transaction commits after it is still caught up, whether the
cursor came with a page or from an earlier catch-up. Two real transactions on two connections."""

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.urls import reverse

from mailbox.models import Message
from mailbox.services import message_import_raw, messages_mark_read, messages_star
from mailsite.models import DomainEvent
from tests.mail import raw_message

pytestmark = pytest.mark.django_db(transaction=True)


def _read_message(mailbox, key: str) -> Message:
    message = message_import_raw(mailbox=mailbox, raw=raw_message(f"{key}@x", f"Subject {key}"), source_tag="t").message
    messages_mark_read(mailbox=mailbox, message_ids=[message.id])
    return message


@contextmanager
def _open_transaction(change: Callable[[], None]) -> Iterator[None]:
    """Run ``change`` in a transaction of another connection (a thread's own) and keep it open,
    uncommitted, until the block ends; then commit it (its failure fails the test)."""
    started, release = threading.Event(), threading.Event()

    def run() -> None:
        try:
            with transaction.atomic():
                change()
                started.set()
                assert release.wait(30), "never released"
        finally:
            started.set()
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(run)
        started.wait(30)
        try:
            yield
        finally:
            release.set()
            held.result(timeout=30)


def _newest_event_id(mailbox) -> int:
    return DomainEvent.objects.filter(mailbox_id=mailbox.id).latest("id").id


def _catch_up(client, after: str) -> dict:
    return client.get(reverse("events_since"), {"after": after}).json()


@pytest.mark.parametrize("page", ["inbox", "conversation"])
def test_an_event_committed_after_a_page_read_a_newer_one_is_caught_up(client, mailbox, page):
    slow, fast = _read_message(mailbox, "slow"), _read_message(mailbox, "fast")
    client.force_login(mailbox.user)
    url = reverse("inbox") if page == "inbox" else reverse("thread_detail", args=[fast.thread_id])

    with _open_transaction(lambda: messages_star(mailbox=mailbox, message_ids=[slow.id])):
        messages_star(mailbox=mailbox, message_ids=[fast.id])  # a higher event id, committed first
        html = client.get(url).content.decode()
    cursor = re.search(r'data-live-cursor="([\d:,]+)"', html).group(1)

    starred = DomainEvent.objects.filter(mailbox_id=mailbox.id, event_type=DomainEvent.Type.MESSAGES_STARRED)
    slow_event = starred.get(subject_id=slow.thread_id)
    assert slow_event.id < _newest_event_id(mailbox)  # the commit-order gap a MAX(id) cursor falls into
    answer = _catch_up(client, cursor)
    assert answer["threads"] == [slow.thread_id]  # the page showed the fast one already
    assert answer["thread_events"] == {str(slow.thread_id): [slow_event.id]}


def test_an_event_committed_after_a_catch_up_read_a_newer_one_is_caught_up_next_time(client, mailbox):
    slow, fast = _read_message(mailbox, "slow"), _read_message(mailbox, "fast")
    client.force_login(mailbox.user)
    html = client.get(reverse("inbox")).content.decode()
    cursor = re.search(r'data-live-cursor="([\d:,]+)"', html).group(1)

    with _open_transaction(lambda: messages_star(mailbox=mailbox, message_ids=[slow.id])):
        messages_star(mailbox=mailbox, message_ids=[fast.id])
        first = _catch_up(client, cursor)

    assert first["threads"] == [fast.thread_id]
    second = _catch_up(client, first["latest"])
    assert second["threads"] == [slow.thread_id]  # not skipped, and the fast one not repeated
    assert _catch_up(client, second["latest"])["threads"] == []
