"""Outbound faults with a real Celery worker, PostgreSQL and a private Redis: a worker killed
mid-send sends nothing twice, and a send committed while the broker is down leaves exactly once
when the release sweeper finds it. The worker sends through the scripted backend (files)."""

import os
import signal
import time
from pathlib import Path

import pytest
from django.utils import timezone

from delivery.models import OutboundDelivery
from delivery.outbound import outbound_sweep_interrupted
from delivery.tasks import outbound_release_task
from mailbox.services.sending import OutgoingMail, message_send
from tests.celery_workers import DEADLINE, wait_for
from tests.delivery.scripted_backend import LOG_ENV, SCRIPT_ENV, sends_logged
from tests.mailbox.test_faults import pytestmark  # noqa: F401 - the inbound fault tests' needs

SCRIPTED = "tests.delivery.scripted_backend.ScriptedBackend"


@pytest.fixture
def files(tmp_path: Path, settings) -> tuple[Path, Path]:
    settings.MAILSITE_UNDO_SEND_SECONDS = 0
    return tmp_path / "script", tmp_path / "sent.log"


def _worker_env(files: tuple[Path, Path]) -> dict[str, str]:
    script, log = files
    return {"EMAIL_BACKEND": SCRIPTED, SCRIPT_ENV: str(script), LOG_ENV: str(log)}


def _send(mailbox) -> OutboundDelivery:
    mail = OutgoingMail(from_address=mailbox.address, to=["carol@example.org"], subject="Once", text="Only once.")
    message = message_send(mailbox=mailbox, mail=mail)
    return OutboundDelivery.objects.get(message_id=message.id)


def _status(delivery: OutboundDelivery) -> str:
    delivery.refresh_from_db()
    return delivery.status


def test_a_worker_killed_mid_send_never_sends_twice(mailbox, start_worker, files, tmp_path, settings):
    script, log = files
    script.write_text("hang\n")
    start_worker("sender", **_worker_env(files))

    delivery = _send(mailbox)
    wait_for(lambda: len(sends_logged(log)) == 1, "the send to reach the backend")
    os.kill(sends_logged(log)[0]["pid"], signal.SIGKILL)

    # The task comes back (acks late, rejected on worker loss) to a new pool process, which finds
    # the attempt claimed and sends nothing.
    worker_log = tmp_path / "sender.log"
    wait_for(lambda: "'sent': 0" in worker_log.read_text(), "the redelivered task to run")
    time.sleep(1)
    assert len(sends_logged(log)) == 1
    assert _status(delivery) == "sending"
    swept = outbound_sweep_interrupted(now=timezone.now() + settings.MAILSITE_OUTBOUND_SENDING_LEASE * 2)
    assert swept == [delivery.id]
    assert _status(delivery) == "dead"
    assert len(sends_logged(log)) == 1


def test_a_send_committed_while_the_broker_is_down_leaves_once_via_the_sweeper(
    mailbox,
    broker,
    start_worker,
    files,
    settings,
):
    _, log = files
    broker.stop()
    delivery = _send(mailbox)  # the task cannot be queued: logged, not raised
    assert _status(delivery) == "queued"

    broker.start()
    start_worker("sender", **_worker_env(files))
    settings.MAILSITE_OUTBOUND_REQUEUE_AFTER = timezone.timedelta(0)
    assert outbound_release_task.apply().get() == 1
    wait_for(lambda: _status(delivery) == "sent", "the swept delivery to be sent", timeout=DEADLINE)

    settings.MAILSITE_OUTBOUND_REQUEUE_AFTER = timezone.timedelta(minutes=1)
    assert outbound_release_task.apply().get() == 0
    assert len(sends_logged(log)) == 1
