"""Publishing from synchronous code (a Celery worker, a command) over the Redis layer: every event
arrives, through one event loop and connection per process, kept across commits and made anew in a
forked child (Celery's prefork pool forks its workers after the parent may have published)."""

import asyncio
import multiprocessing
import os

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from mailsite import realtime
from mailsite.realtime import mailbox_group_name, mailbox_publish_on_commit
from tests.conftest import requires_redis

pytestmark = [requires_redis, pytest.mark.django_db(transaction=True)]  # real commits
MAILBOX_ID = 987_654_321  # no such mailbox: the group is this test's alone


@pytest.fixture
def redis_layer(settings):
    """A Redis layer of its own (Channels drops its cached layer when the setting changes)."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [os.environ["REDIS_URL"]]}}
    }
    layer = get_channel_layer()
    # A plain channel name: a process-local one (new_channel) buffers what it reads in the loop
    # that read it, and each receive here runs in a loop of its own.
    channel = f"realtime-loop-test-{os.getpid()}"
    async_to_sync(layer.group_add)(mailbox_group_name(MAILBOX_ID), channel)
    yield layer, channel
    async_to_sync(layer.group_discard)(mailbox_group_name(MAILBOX_ID), channel)


def _publish_committed(number: int) -> None:
    with transaction.atomic():
        mailbox_publish_on_commit(mailbox_id=MAILBOX_ID, event={"type": "ping", "n": number})


def _received(layer, channel, count: int) -> list[dict]:
    """The next ``count`` events, read in one loop, which waits for the layer to clear each from its
    backup queue (a loop closed before that would see them again)."""

    async def receive() -> list[dict]:
        events = [(await layer.receive(channel))["payload"] for _ in range(count)]
        await asyncio.gather(*layer.receive_cleaners)
        return events

    return async_to_sync(receive)()


def test_commits_in_a_row_publish_through_one_loop_of_the_process(redis_layer):
    layer, channel = redis_layer

    for number in range(3):
        _publish_committed(number)

    assert _received(layer, channel, 3) == [{"type": "ping", "n": n} for n in range(3)]
    process_loop = realtime._process_loop()
    assert process_loop.is_running()
    # The layer connected from the process loop; the receive above from a loop of its own, now closed.
    assert [loop for loop in layer._layers if not loop.is_closed()] == [process_loop]


def _publish_in_child(number: int) -> None:
    realtime._send_all({MAILBOX_ID: [{"type": "ping", "n": number}]})


def test_a_forked_child_publishes_through_a_loop_of_its_own(redis_layer):
    layer, channel = redis_layer
    _publish_committed(0)  # the parent's loop runs before the fork
    assert _received(layer, channel, 1) == [{"type": "ping", "n": 0}]

    child = multiprocessing.get_context("fork").Process(target=_publish_in_child, args=(1,))
    child.start()
    child.join(timeout=60)

    assert child.exitcode == 0
    assert _received(layer, channel, 1) == [{"type": "ping", "n": 1}]
