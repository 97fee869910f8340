"""Live updates: a browser's websocket joins its mailbox group and receives what the domain publishes.

Runs on whichever channel layer the settings chose: in-memory in embedded mode, Redis when
REDIS_URL is set (as in CI), where the cross-process test proves the Redis layer carries events
from another process, as it does from a Celery worker.
"""

import asyncio
import os
import sys
from asyncio.subprocess import PIPE

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.utils import create_pool
from django.conf import settings
from django.db import connections, transaction

from mailbox.consumers import MailboxConsumer
from mailbox.services import (
    message_import_raw,
    messages_delete,
    messages_label_add,
    messages_mark_read,
    messages_star,
    thread_merge,
    thread_split,
)
from mailbox.services.labels import label_get_or_create
from mailbox.services.preferences import user_label_create, user_label_delete, user_label_update
from mailsite.asgi import application
from mailsite.models import DomainEvent
from mailsite.realtime import mailbox_group_name, mailbox_publish_many_on_commit, mailbox_publish_on_commit
from tests.conftest import REPO_ROOT, requires_redis
from tests.threads.builders import deliver, reply

RAW = b"From: c@example.org\r\nTo: alice@example.test\r\nSubject: live\r\nMessage-ID: <live@x>\r\n\r\nhi\r\n"

# Connecting looks the user's mailbox up in the database and joins a group: on a busy machine that
# takes longer than the test client's one-second default.
CONNECT_TIMEOUT = 10
# Deadlines, not waits: each returns as soon as the event arrives or the process ends. (A timeout
# of the test communicator cancels the consumer, so one generous deadline, not a polling loop.)
EVENT_DEADLINE = 30
PROCESS_DEADLINE = 120

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest_asyncio.fixture(autouse=True)
async def _close_worker_thread_connections():
    """database_sync_to_async keeps a connection in its worker thread; close it, or the test
    database cannot be dropped at the end of the run."""
    yield
    await database_sync_to_async(connections.close_all)()


def _communicator(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(MailboxConsumer.as_asgi(), "/ws/mailbox/")
    communicator.scope["user"] = user
    return communicator


async def test_new_mail_is_pushed_to_the_owners_socket(mailbox):
    communicator = _communicator(mailbox.user)
    connected, _ = await communicator.connect(timeout=CONNECT_TIMEOUT)
    assert connected

    delivered = await database_sync_to_async(message_import_raw)(mailbox=mailbox, raw=RAW, source_tag="test")

    event = await communicator.receive_json_from(timeout=EVENT_DEADLINE)
    received = await DomainEvent.objects.aget(event_type=DomainEvent.Type.MESSAGE_RECEIVED)
    assert event == {"type": "thread.updated", "thread_id": delivered.message.thread_id, "event_id": received.id}
    await communicator.disconnect()


async def test_another_users_mail_is_not_pushed(mailbox, other_mailbox):
    communicator = _communicator(mailbox.user)
    await communicator.connect(timeout=CONNECT_TIMEOUT)
    await database_sync_to_async(message_import_raw)(mailbox=other_mailbox, raw=RAW, source_tag="test")

    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_anonymous_sockets_are_refused():
    from django.contrib.auth.models import AnonymousUser

    connected, code = await _communicator(AnonymousUser()).connect(timeout=CONNECT_TIMEOUT)
    assert not connected
    assert code == 4401


async def test_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(application, "/ws/mailbox/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect(timeout=CONNECT_TIMEOUT)
    assert not connected


@requires_redis
async def test_the_redis_layer_outwaits_its_own_blocking_reads():
    layer = get_channel_layer()
    pool = create_pool(layer.hosts[0])
    timeout = pool.connection_kwargs["socket_timeout"]
    assert timeout is None or timeout > layer.brpop_timeout


@requires_redis
async def test_a_socket_idle_longer_than_a_blocking_read_still_gets_events(mailbox):
    """redis-py 8 cuts socket reads at 5 s by default, as long as channels_redis blocks waiting."""
    communicator = _communicator(mailbox.user)
    assert (await communicator.connect(timeout=CONNECT_TIMEOUT))[0]
    await asyncio.sleep(get_channel_layer().brpop_timeout + 2)  # idle is the point here

    await database_sync_to_async(mailbox_publish_on_commit)(mailbox_id=mailbox.id, event={"type": "ping"})

    assert await communicator.receive_json_from(timeout=EVENT_DEADLINE) == {"type": "ping"}
    await communicator.disconnect()


def _test_database_url() -> str:
    """The test database, for a process started by the test (it checks autocommit on publish)."""
    db = connections["default"].settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@requires_redis
async def test_events_published_by_another_process_arrive_over_redis(mailbox):
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    communicator = _communicator(mailbox.user)
    await communicator.connect(timeout=CONNECT_TIMEOUT)
    script = (
        "import django; django.setup()\n"
        "from mailsite.realtime import mailbox_publish_on_commit\n"
        f"mailbox_publish_on_commit(mailbox_id={mailbox.id}, event={{'type': 'ping', 'from': 'worker'}})\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mailsite.settings"}
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = _test_database_url()
    # Awaited, not run: a blocking wait would stall the consumer's Redis reads on this event loop
    # for as long as the process takes to start (many seconds on a loaded machine) until they
    # time out, and the event would never be relayed.
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=REPO_ROOT, env=env, stdout=PIPE, stderr=PIPE
    )
    _, stderr = await asyncio.wait_for(worker.communicate(), timeout=PROCESS_DEADLINE)
    assert worker.returncode == 0, stderr.decode()

    assert await communicator.receive_json_from(timeout=EVENT_DEADLINE) == {"type": "ping", "from": "worker"}
    await communicator.disconnect()


# --- Thread changes, through each channel layer ---------------------------------------------

LAYERS = {
    "in-memory": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    "redis": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [os.environ.get("REDIS_URL")]}},
}


@pytest.fixture(params=["in-memory", pytest.param("redis", marks=requires_redis)])
def channel_layer(request, settings):
    """Channels drops its cached layer when the setting changes."""
    settings.CHANNEL_LAYERS = {"default": LAYERS[request.param]}
    return request.param


def _changes(mailbox) -> list[dict]:
    """A sequence of changes to two threads, each action in its own transaction (and a label an
    import would create); returns the domain events, in order, as (type, thread_id, payload)."""
    a = deliver(mailbox, "a@x", "Budget 2027")
    b = reply(mailbox, "b@x", a)
    x = deliver(mailbox, "x@x", "Party")
    work = label_get_or_create(mailbox=mailbox, name="Work")
    messages_mark_read(mailbox=mailbox, message_ids=[a.pk, x.pk])
    messages_star(mailbox=mailbox, message_ids=[b.pk])
    messages_label_add(mailbox=mailbox, message_ids=[a.pk, x.pk], label=work)
    split = thread_split(mailbox=mailbox, message_ids=[b.pk])
    thread_merge(mailbox=mailbox, thread_ids=[split.pk, x.thread_id], into_thread_id=a.thread_id)
    messages_delete(mailbox=mailbox, message_ids=[a.pk, b.pk, x.pk])
    return list(DomainEvent.objects.filter(mailbox_id=mailbox.id).order_by("id").values("id", "event_type", "payload"))


def _expected(event: dict) -> dict:
    """The live event the contract promises for one recorded domain event."""
    payload = event["payload"]
    if event["event_type"] == "label.changed":
        return {"type": "label.changed", "label_id": payload["label_id"], "event_id": event["id"]}
    if "merged_into" in payload:
        return {
            "type": "thread.removed",
            "thread_id": payload["thread_id"],
            "merged_into": payload["merged_into"],
            "event_id": event["id"],
        }
    return {"type": "thread.updated", "thread_id": payload["thread_id"], "event_id": event["id"]}


async def test_every_thread_change_reaches_the_socket_with_its_recorded_event(mailbox, channel_layer):
    communicator = _communicator(mailbox.user)
    assert (await communicator.connect(timeout=CONNECT_TIMEOUT))[0]

    recorded = await database_sync_to_async(_changes)(mailbox)

    pushed = [await communicator.receive_json_from(timeout=EVENT_DEADLINE) for _ in recorded]
    assert await communicator.receive_nothing(timeout=0.3)
    assert pushed == [_expected(event) for event in recorded]
    types = [event["event_type"] for event in recorded]
    assert types[:3] == ["message.received"] * 3
    assert {"label.changed", "messages.read", "messages.starred", "messages.labelled", "thread.split"} <= set(types)
    assert "thread.merged" in types
    assert types[-1] == "messages.deleted"
    assert pushed[-1]["type"] == "thread.removed"
    assert pushed[-1]["merged_into"] is None
    assert {p["merged_into"] for p in pushed if p["type"] == "thread.removed"} - {None} == {
        recorded[0]["payload"]["thread_id"]
    }
    await communicator.disconnect()


def _label_on_a_thread_deleted(mailbox) -> tuple[int, int]:
    """A user label on a delivered message, then deleted: (label id, the deletion's event id)."""
    message = deliver(mailbox, "labelled@x", "Labelled")
    work = user_label_create(mailbox=mailbox, name="Work")
    messages_label_add(mailbox=mailbox, message_ids=[message.pk], label=work)
    label_id = work.pk  # Django clears it on delete
    user_label_delete(label=work)
    return label_id, DomainEvent.objects.get(event_type=DomainEvent.Type.LABEL_DELETED).pk


async def test_deleting_a_label_is_pushed_once_not_per_thread(mailbox, other_mailbox, channel_layer):
    mine, theirs = _communicator(mailbox.user), _communicator(other_mailbox.user)
    assert (await mine.connect(timeout=CONNECT_TIMEOUT))[0]
    assert (await theirs.connect(timeout=CONNECT_TIMEOUT))[0]

    label_id, event_id = await database_sync_to_async(_label_on_a_thread_deleted)(mailbox)

    pushed = []
    while not await mine.receive_nothing(timeout=0.5):
        pushed.append(await mine.receive_json_from(timeout=5))
    assert pushed[-1] == {"type": "label.deleted", "label_id": label_id, "event_id": event_id}
    assert [p["type"] for p in pushed].count("label.deleted") == 1
    assert await theirs.receive_nothing(timeout=0.3)
    event = await DomainEvent.objects.aget(pk=event_id)
    assert (event.mailbox_id, event.subject_type, event.payload) == (mailbox.id, "label", {"label_id": label_id})
    await mine.disconnect()
    await theirs.disconnect()


def _label_created_then_changed(mailbox) -> tuple[int, list[int]]:
    """A user label on a delivered message, created then renamed and recoloured: (label id, the
    ids of the two events)."""
    message = deliver(mailbox, "changed@x", "Changed")
    work = user_label_create(mailbox=mailbox, name="Work")
    messages_label_add(mailbox=mailbox, message_ids=[message.pk], label=work)
    user_label_update(label=work, name="Office", colour="#d93025")
    events = DomainEvent.objects.filter(event_type=DomainEvent.Type.LABEL_CHANGED).order_by("id")
    return work.pk, list(events.values_list("id", flat=True))


async def test_creating_and_changing_a_label_is_pushed_once_each_not_per_thread(mailbox, other_mailbox, channel_layer):
    mine, theirs = _communicator(mailbox.user), _communicator(other_mailbox.user)
    assert (await mine.connect(timeout=CONNECT_TIMEOUT))[0]
    assert (await theirs.connect(timeout=CONNECT_TIMEOUT))[0]

    label_id, event_ids = await database_sync_to_async(_label_created_then_changed)(mailbox)

    pushed = []
    while not await mine.receive_nothing(timeout=0.5):
        pushed.append(await mine.receive_json_from(timeout=5))
    changes = [p for p in pushed if p["type"] == "label.changed"]
    assert changes == [{"type": "label.changed", "label_id": label_id, "event_id": i} for i in event_ids]
    assert len(event_ids) == 2
    assert await theirs.receive_nothing(timeout=0.3)
    event = await DomainEvent.objects.aget(pk=event_ids[-1])
    assert (event.mailbox_id, event.subject_type, event.payload) == (mailbox.id, "label", {"label_id": label_id})
    await mine.disconnect()
    await theirs.disconnect()


def _publish_together(events: list[tuple[int, dict]]) -> None:
    with transaction.atomic():
        mailbox_publish_many_on_commit(events=events)


async def test_events_published_together_reach_each_socket_in_order_with_one_send_per_mailbox(
    mailbox, other_mailbox, channel_layer, monkeypatch
):
    mine, theirs = _communicator(mailbox.user), _communicator(other_mailbox.user)
    assert (await mine.connect(timeout=CONNECT_TIMEOUT))[0]
    assert (await theirs.connect(timeout=CONNECT_TIMEOUT))[0]
    layer, sends = get_channel_layer(), []
    group_send = layer.group_send

    async def counted(group: str, message: dict) -> None:
        sends.append(group)
        await group_send(group, message)

    monkeypatch.setattr(layer, "group_send", counted)
    events = [(mailbox.id, {"type": "thread.updated", "thread_id": n, "event_id": 10 + n}) for n in range(3)]
    events.insert(1, (other_mailbox.id, {"type": "thread.updated", "thread_id": 9, "event_id": 19}))

    await database_sync_to_async(_publish_together)(events)

    assert [await mine.receive_json_from(timeout=EVENT_DEADLINE) for _ in range(3)] == [
        e for i, e in events if i == mailbox.id
    ]
    assert await theirs.receive_json_from(timeout=EVENT_DEADLINE) == events[1][1]
    assert await mine.receive_nothing(timeout=0.3)
    assert await theirs.receive_nothing(timeout=0.3)
    assert sorted(sends) == sorted([mailbox_group_name(mailbox.id), mailbox_group_name(other_mailbox.id)])
    await mine.disconnect()
    await theirs.disconnect()
