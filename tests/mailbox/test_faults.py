"""Faults with a real Celery worker, PostgreSQL and Redis: nothing accepted is lost or doubled.

Each test runs its own ``redis-server`` and workers (``tests.celery_workers``). The workers
import this module (``--include``): where ``SLOW_PARSE_MARKER`` is set in their
environment, the first parse writes its process id to that file and hangs, so a test can kill
the process mid-parse. That hook exists only here, never in the product's code.
"""

import os
import shutil
import signal
import smtplib
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection, connections

from delivery.models import InboundReceipt
from delivery.selectors import blob_read
from mailbox.management.commands.runsmtpd import smtp_listener
from mailbox.models import Message
from mailbox.services import receiving
from mailbox.services.ingest import inbound_accept
from mailbox.tasks import receipts_sweep_task
from mailsite.celery import app
from tests.celery_workers import SLOW_PARSE_MARKER, free_port, wait_for
from tests.conftest import requires_redis
from tests.mail import raw_message

pytestmark = [
    requires_redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server program"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.real_broker,
]

RAW = raw_message("fault-1@example.org", "Survives faults")


def _parse_slowly_the_first_time(marker: Path) -> None:
    real_parse = receiving.parse_message

    def parse_message(raw: bytes, **kwargs):
        try:
            with marker.open("x") as handle:
                handle.write(str(os.getpid()))
        except FileExistsError:
            return real_parse(raw, **kwargs)
        time.sleep(120)  # killed long before this ends
        return real_parse(raw, **kwargs)

    receiving.parse_message = parse_message


if os.environ.get(SLOW_PARSE_MARKER):  # only in the workers these tests start
    _parse_slowly_the_first_time(Path(os.environ[SLOW_PARSE_MARKER]))


@app.task(name="tests.note_backend_pid")
def note_backend_pid(path: str) -> None:
    """Append the PostgreSQL backend serving this task's database connection to ``path``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with Path(path).open("a") as handle:
        handle.write(f"{pid}\n")


def _accept(**fields) -> InboundReceipt:
    stored = inbound_accept(source="smtp", raw=RAW, envelope_recipients=["alice@example.test"], **fields)
    assert stored.created
    return stored.receipt


def _status(receipt: InboundReceipt) -> str:
    receipt.refresh_from_db()
    return receipt.status


def _parsed_once(receipt: InboundReceipt, mailbox) -> None:
    wait_for(lambda: _status(receipt) == InboundReceipt.Status.PARSED, "the receipt to be parsed")
    assert Message.objects.filter(mailbox=mailbox, receipt=receipt).count() == 1
    assert Message.objects.count() == 1


def test_a_worker_process_killed_mid_parse_hands_the_message_to_the_next(mailbox, start_worker, tmp_path):
    """acks_late + reject_on_worker_lost: the pool process dies, the task goes back to the queue,
    the worker's next process parses it once."""
    marker = tmp_path / "slow-parse.pid"
    start_worker("killed", include=__name__, **{SLOW_PARSE_MARKER: str(marker)})

    receipt = _accept(event_id="kill-1")
    wait_for(marker.exists, "the parse to start")
    os.kill(int(marker.read_text()), signal.SIGKILL)

    _parsed_once(receipt, mailbox)
    assert receipt.attempts == 2


def test_a_whole_worker_killed_mid_parse_is_completed_by_another_via_the_sweeper(
    mailbox, start_worker, tmp_path, settings
):
    """A dead worker cannot give its task back: Redis would redeliver it only after the visibility
    timeout (an hour), so the sweeper re-queues the receipt for the next worker."""
    marker = tmp_path / "slow-parse.pid"
    first = start_worker("dies", include=__name__, pool="solo", **{SLOW_PARSE_MARKER: str(marker)})
    receipt = _accept(event_id="kill-2")
    wait_for(marker.exists, "the parse to start")
    assert int(marker.read_text()) == first.pid
    first.kill()
    first.wait(timeout=10)

    start_worker("next", include=__name__)
    settings.MAILSITE_RECEIPT_SWEEP_AFTER = timedelta(0)
    assert receipts_sweep_task.apply().get() == 1

    _parsed_once(receipt, mailbox)
    assert receipt.attempts == 2


def test_a_worker_keeps_its_database_connection_from_task_to_task(start_worker, tmp_path):
    """Celery's Django fix-up would open a new connection for every task (a PostgreSQL backend
    started and 4 ms of worker CPU each); CELERY_DB_REUSE_MAX and mailsite.celery keep it."""
    start_worker("reusing", include=__name__, pool="solo")
    noted = tmp_path / "backend-pids.txt"
    for _ in range(3):
        note_backend_pid.delay(str(noted))

    wait_for(lambda: noted.exists() and len(noted.read_text().split()) == 3, "three tasks to run")
    assert len(set(noted.read_text().split())) == 1


def test_mail_accepted_while_redis_is_down_is_answered_then_swept_once_it_is_back(
    mailbox, broker, start_worker, monkeypatch
):
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)  # listener threads
    listener = smtp_listener(host="127.0.0.1", port=free_port())
    listener.start()
    try:
        broker.stop()
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as client:
            assert client.sendmail("carol@example.org", ["alice@example.test"], RAW) == {}
    finally:
        listener.stop()
    receipt = InboundReceipt.objects.get()
    assert (receipt.status, receipt.attempts) == (InboundReceipt.Status.RECEIVED, 0)

    broker.start()
    start_worker("sweeper", include=__name__, MAILSITE_RECEIPT_SWEEP_AFTER_SECONDS="0")
    receipts_sweep_task.delay()  # what beat sends every minute, run by the worker

    _parsed_once(receipt, mailbox)
    assert receipt.attempts == 1


def test_a_transient_storage_failure_is_retried_by_the_worker(mailbox, start_worker):
    receipt = _accept(event_id="retry-1")  # queued; no worker yet
    kept = blob_read(blob=receipt.blob)
    storages["mail"].delete(receipt.blob.storage_key)  # the object store loses it for a while

    start_worker("retrying", include=__name__)
    wait_for(lambda: _status(receipt) == "received" and receipt.attempts >= 2, "a retry after the failure")
    storages["mail"].save(receipt.blob.storage_key, ContentFile(kept))

    _parsed_once(receipt, mailbox)
    assert receipt.attempts >= 3
    assert blob_read(blob=receipt.blob) == kept
