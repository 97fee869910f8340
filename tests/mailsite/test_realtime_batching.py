"""Live updates published many at a time: one on-commit callback and one group message per mailbox for
calls in a row, in the order published, and nothing from a savepoint rolled back.

(tests/mailsite/test_realtime.py carries such messages through the real channel layers to sockets.)
"""

import pytest
from django.db import transaction

from mailsite.realtime import mailbox_group_name, mailbox_publish_many_on_commit, mailbox_publish_on_commit


class _Layer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append((group, message))


@pytest.fixture
def layer(monkeypatch) -> _Layer:
    fake = _Layer()
    monkeypatch.setattr("mailsite.realtime.get_channel_layer", lambda: fake)
    return fake


def _event(n: int) -> dict:
    return {"type": "thread.updated", "thread_id": n, "event_id": n}


def _frames(layer: _Layer) -> list[tuple[str, dict]]:
    """What the sockets receive: each group message's events, one by one."""
    frames = []
    for group, message in layer.sent:
        payloads = message["payloads"] if message["type"] == "mailbox.events" else [message["payload"]]
        frames += [(group, payload) for payload in payloads]
    return frames


@pytest.mark.django_db
def test_publishes_in_a_row_share_one_callback_and_one_send_per_mailbox(layer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        mailbox_publish_many_on_commit(events=[(1, _event(1)), (2, _event(2))])
        mailbox_publish_many_on_commit(events=[(1, _event(3))])
        mailbox_publish_many_on_commit(events=[])
        mailbox_publish_many_on_commit(events=[(1, _event(4))])

    assert len(callbacks) == 1
    assert layer.sent == [
        (mailbox_group_name(1), {"type": "mailbox.events", "payloads": [_event(1), _event(3), _event(4)]}),
        (mailbox_group_name(2), {"type": "mailbox.event", "payload": _event(2)}),
    ]


@pytest.mark.django_db
def test_single_publishes_join_in_and_the_order_holds(layer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        mailbox_publish_many_on_commit(events=[(1, _event(1))])
        mailbox_publish_on_commit(mailbox_id=1, event=_event(2))
        mailbox_publish_many_on_commit(events=[(1, _event(3))])

    assert len(callbacks) == 1
    assert [payload for _, payload in _frames(layer)] == [_event(1), _event(2), _event(3)]


@pytest.mark.django_db
def test_a_callback_registered_in_between_keeps_the_order(layer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        mailbox_publish_many_on_commit(events=[(1, _event(1))])
        transaction.on_commit(lambda: layer.sent.append(("other", {"type": "mailbox.event", "payload": _event(2)})))
        mailbox_publish_many_on_commit(events=[(1, _event(3))])

    assert len(callbacks) == 3
    assert [payload for _, payload in _frames(layer)] == [_event(1), _event(2), _event(3)]


@pytest.mark.django_db
def test_events_of_a_savepoint_rolled_back_are_not_published(layer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        mailbox_publish_many_on_commit(events=[(1, _event(1))])
        try:
            with transaction.atomic():
                mailbox_publish_many_on_commit(events=[(1, _event(2))])
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        mailbox_publish_many_on_commit(events=[(1, _event(3))])

    assert [payload for _, payload in _frames(layer)] == [_event(1), _event(3)]
