"""Outbound throughput and latency: queued deliveries → handed off to a local SMTP sink (an
aiosmtpd server in this process, which only counts) or to Anymail's test backend.

Runs in a separate database (``<name>_send_bench``, rebuilt each run) with blobs under a temporary
folder, and prints:

- throughput, deliveries handed off per second, with 1 and 2 worker processes: every delivery is
  queued first (``message_send`` with the on-commit queueing off), then each worker process takes
  every other batch through ``outbound_send`` (the body of the Celery task: claim, read the blob,
  hand off over one connection, record), so Celery's own dispatch is not counted;
- latency, p50/p95 from ``message_send`` called (the Send click) to handed off, undo delay 0,
  one message after another, the send task run eagerly on commit as in the embedded mode.

    .venv/bin/python bench/send.py [--messages 200] [--recipients 10] [--latency 100]
"""

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

import django  # noqa: E402

django.setup()

from aiosmtpd.controller import Controller  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402

SINK_PORT = 2599


class CountingSink:
    """An SMTP server that accepts everything and keeps nothing (aiosmtpd's ``Sink`` lives in
    ``aiosmtpd.handlers``, which imports ``mailbox``: here that is our app)."""

    received = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        CountingSink.received += 1
        await asyncio.sleep(0)
        return "250 OK"


def _use_bench_database() -> None:
    connection.settings_dict["TEST"]["NAME"] = f"{settings.DATABASES['default']['NAME']}_send_bench"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)


def _use_temporary_blob_storage() -> None:
    from django.core.files.storage import storages

    folder = tempfile.mkdtemp(prefix="mailsite-send-bench-")
    settings.STORAGES = {
        **settings.STORAGES,
        "mail": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": folder}},
    }
    storages._storages = {}
    storages.__dict__.pop("backends", None)


def _configure(backend: str) -> None:
    settings.EMAIL_BACKEND = backend
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", SINK_PORT
    settings.MAILSITE_UNDO_SEND_SECONDS = 0
    settings.MAILSITE_SEND_LIMIT_PER_MINUTE = settings.MAILSITE_SEND_LIMIT_PER_DAY = 10**9
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from mailsite.celery import app

    app.conf.task_always_eager = True


def _queue(mailbox: object, messages: int, recipients: int, tag: str) -> list[int]:
    """Send ``messages`` messages to ``recipients`` foreign addresses each, with nothing queued."""
    from delivery.models import OutboundDelivery
    from mailbox.services import sending

    real_queue = sending.outbound_send_queue_on_commit
    sending.outbound_send_queue_on_commit = lambda **_: None
    try:
        for index in range(messages):
            to = [f"r{index}-{n}@sink.example.org" for n in range(recipients)]
            mail = sending.OutgoingMail(
                from_address=mailbox.address, to=to, subject=f"Bench {tag} {index}", text="Queued for the bench.\n" * 20
            )
            sending.message_send(mailbox=mailbox, mail=mail)
    finally:
        sending.outbound_send_queue_on_commit = real_queue
    return list(OutboundDelivery.objects.filter(status="queued").order_by("id").values_list("id", flat=True))


def _worker(batches: list[list[int]]) -> tuple[int, float]:
    """Send ``batches``; returns how many were sent and the CPU seconds this process spent on them
    (``process_time``: meaningful on a loaded machine, where wall time is not)."""
    from delivery.outbound import outbound_send

    connections.close_all()
    started = time.process_time()
    sent = sum(outbound_send(delivery_ids=batch).sent for batch in batches)
    return sent, time.process_time() - started


def _throughput(ids: list[int], workers: int) -> tuple[float, int, float]:
    """Deliveries handed off per second of wall time, how many, and worker CPU ms per delivery."""
    size = settings.MAILSITE_OUTBOUND_BATCH_SIZE
    batches = [ids[i : i + size] for i in range(0, len(ids), size)]
    shares = [batches[w::workers] for w in range(workers)]
    connections.close_all()
    started = time.perf_counter()
    with get_context("fork").Pool(workers) as pool:
        results = pool.map(_worker, shares)
    elapsed = time.perf_counter() - started
    sent, cpu = sum(r[0] for r in results), sum(r[1] for r in results)
    return sent / elapsed, sent, cpu * 1000 / max(sent, 1)


def _latency(mailbox: object, count: int) -> list[float]:
    from delivery.models import OutboundDelivery
    from mailbox.services.sending import OutgoingMail, message_send

    took = []
    for index in range(count):
        mail = OutgoingMail(from_address=mailbox.address, to=[f"l{index}@sink.example.org"], subject="Now", text="Hi")
        started = time.perf_counter()
        message = message_send(mailbox=mailbox, mail=mail)
        took.append(time.perf_counter() - started)
        assert OutboundDelivery.objects.get(message_id=message.id).status == "sent"
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--recipients", type=int, default=10)
    parser.add_argument("--latency", type=int, default=100)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # a log line per batch and task would be most of the output
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (shared machine: wall figures vary)")
    _use_bench_database()
    _use_temporary_blob_storage()
    from mailbox.services import mailbox_create

    sender = mailbox_create(address="sender@bench.example.test", password=None, display_name="Bench")
    sink = Controller(CountingSink(), hostname="127.0.0.1", port=SINK_PORT)
    sink.start()
    backends = {
        "SMTP sink (aiosmtpd)": "django.core.mail.backends.smtp.EmailBackend",
        "Anymail test backend": "anymail.backends.test.EmailBackend",
    }
    batch = settings.MAILSITE_OUTBOUND_BATCH_SIZE
    lanes = settings.MAILSITE_OUTBOUND_CONNECTIONS
    print(f"{args.messages} messages x {args.recipients} recipients per run; batch {batch}, {lanes} connection(s) each")
    try:
        for name, backend in backends.items():
            _configure(backend)
            for workers in (1, 2):
                ids = _queue(sender, args.messages, args.recipients, f"{name}-{workers}")
                before, sink_cpu = CountingSink.received, time.process_time()
                rate, sent, cpu_ms = _throughput(ids, workers)
                sink_cpu = (time.process_time() - sink_cpu) * 1000 / max(sent, 1)
                sink_note = (
                    f"; sink received {CountingSink.received - before}, sink CPU {sink_cpu:.2f} ms/delivery"
                    if "smtp" in backend
                    else ""
                )
                print(
                    f"{name:24} {workers} worker(s): {rate:7.1f} deliveries/s handed off ({sent} sent), "
                    f"worker CPU {cpu_ms:.2f} ms/delivery{sink_note}",
                    flush=True,
                )
            took = _latency(sender, args.latency)
            p50 = statistics.median(took) * 1000
            p95 = statistics.quantiles(took, n=20)[18] * 1000
            print(f"{name:24} send → handed off (undo 0, eager): p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at the end")
    finally:
        sink.stop()
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
