"""Live updates: a browser's websocket joins its mailbox group and receives what the domain publishes.

Runs on whichever channel layer the settings chose: in-memory in embedded mode, Redis when
REDIS_URL is set (as in CI), where the cross-process test proves the Redis layer carries events
from another process, as it does from a Celery worker.
"""

import os
import subprocess
import sys

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections

from mailbox.consumers import MailboxConsumer
from mailbox.services import message_import_raw
from mailsite.asgi import application
from tests.conftest import REPO_ROOT, requires_redis

RAW = b"From: c@example.org\r\nTo: alice@example.test\r\nSubject: live\r\nMessage-ID: <live@x>\r\n\r\nhi\r\n"

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
    connected, _ = await communicator.connect()
    assert connected

    delivered = await database_sync_to_async(message_import_raw)(mailbox=mailbox, raw=RAW, source_tag="test")

    event = await communicator.receive_json_from(timeout=5)
    assert event == {
        "type": "thread.updated",
        "thread_id": delivered.message.thread_id,
        "message_id": delivered.message.id,
    }
    await communicator.disconnect()


async def test_another_users_mail_is_not_pushed(mailbox, other_mailbox):
    communicator = _communicator(mailbox.user)
    await communicator.connect()
    await database_sync_to_async(message_import_raw)(mailbox=other_mailbox, raw=RAW, source_tag="test")

    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_anonymous_sockets_are_refused():
    from django.contrib.auth.models import AnonymousUser

    connected, code = await _communicator(AnonymousUser()).connect()
    assert not connected
    assert code == 4401


async def test_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(application, "/ws/mailbox/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected


def _test_database_url() -> str:
    """The test database, for a process started by the test (it checks autocommit on publish)."""
    db = connections["default"].settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@requires_redis
async def test_events_published_by_another_process_arrive_over_redis(mailbox):
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    communicator = _communicator(mailbox.user)
    await communicator.connect()
    script = (
        "import django; django.setup()\n"
        "from mailsite.realtime import mailbox_publish_on_commit\n"
        f"mailbox_publish_on_commit(mailbox_id={mailbox.id}, event={{'type': 'ping', 'from': 'worker'}})\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mailsite.settings"}
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = _test_database_url()
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr

    assert await communicator.receive_json_from(timeout=5) == {"type": "ping", "from": "worker"}
    await communicator.disconnect()
