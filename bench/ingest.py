"""End-to-end ingestion: raw bytes → ``inbound_accept`` → ``receipt_process`` → committed metadata.

Runs in a separate database (``<name>_ingest_bench``, rebuilt each run) with blobs under a temporary
folder, and prints, for the real corpora and a synthetic set:

- in-process, 1 process: each message accepted then processed at once (the eager path), messages/s
  and p50/p95 latency per message from ``inbound_accept`` to committed metadata;
- store then process: all receipts accepted first (the webhook side: messages/s), then processed by
  1 and by 2 worker processes (each an OS process taking every other receipt through
  ``receipt_process``, the body of the Celery task), messages/s and p50/p95 per message;
- peak memory (``ru_maxrss``) of the main process and of each worker;
- the parse-only ceilings on the same messages (``bench/parse.py``), so the pipeline's overhead
  shows as a ratio.

    .venv/bin/python bench/ingest.py [--synthetic 2000] [--no-corpora] [--workers 2]

The issue asks for a synthetic 100k set: ``--synthetic 100000`` (minutes, not seconds).
"""

import argparse
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402
from parse import corpus_messages, measure, ours, stdlib_compat32, synthetic_messages  # noqa: E402

BENCH_DOMAIN = "bench.example.test"


def _use_bench_database() -> None:
    connection.settings_dict["TEST"]["NAME"] = f"{settings.DATABASES['default']['NAME']}_ingest_bench"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)


def _use_temporary_blob_storage() -> None:
    from django.core.files.storage import storages

    folder = tempfile.mkdtemp(prefix="mailsite-ingest-bench-")
    settings.STORAGES = {
        **settings.STORAGES,
        "mail": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": folder}},
    }
    storages._storages = {}
    storages.__dict__.pop("backends", None)


def _queue_nothing() -> None:
    """The benchmark drives ``receipt_process`` itself: the on-commit task queueing is switched off."""
    from mailbox.services import ingest

    class _NoQueue:
        @staticmethod
        def delay(*_args: object) -> None:
            return None

    ingest.receipt_process_task = _NoQueue()


def _tagged(raw: bytes, tag: str) -> bytes:
    """Distinct bytes per run (so blobs and messages are new): a trace header after any mbox line."""
    header = f"X-Bench-Run: {tag}\r\n".encode()
    if raw.startswith(b"From "):
        first, _, rest = raw.partition(b"\n")
        return first + b"\n" + header + rest
    return header + raw


def _mailbox(name: str):  # noqa: ANN202 - a Mailbox
    from mailbox.services import mailbox_create

    return mailbox_create(address=f"{name}@{BENCH_DOMAIN}", password=None)


def _accept(raw: bytes, address: str, event_id: str) -> int:
    from mailbox.services.ingest import inbound_accept

    return inbound_accept(source="import", raw=raw, event_id=event_id, envelope_recipients=[address]).receipt.id


def _process(receipt_ids: list[int]) -> tuple[list[float], int, dict[str, int]]:
    """Process receipts in this process: (latencies in s, peak RSS in KB, outcome counts)."""
    from mailbox.services.receiving import receipt_process

    latencies = []
    outcomes: dict[str, int] = {}
    for receipt_id in receipt_ids:
        started = time.perf_counter()
        try:
            status = receipt_process(receipt_id=receipt_id).status
        except Exception as error:  # noqa: BLE001 - counted and shown, the run goes on
            status = f"raised {type(error).__name__}"
        latencies.append(time.perf_counter() - started)
        outcomes[status] = outcomes.get(status, 0) + 1
    connections.close_all()
    return latencies, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, outcomes


def _percentiles(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"p50 {statistics.median(ordered) * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms"


def _in_process(messages: list[bytes], tag: str) -> float:
    """Accept and process each message at once in this process, as the eager path does."""
    from mailbox.services.receiving import receipt_process

    address = _mailbox(f"inline-{tag}").address
    latencies = []
    started = time.perf_counter()
    for number, raw in enumerate(messages):
        begun = time.perf_counter()
        receipt_process(receipt_id=_accept(_tagged(raw, f"inline-{tag}"), address, f"inline-{tag}-{number}"))
        latencies.append(time.perf_counter() - begun)
    rate = len(messages) / (time.perf_counter() - started)
    print(f"  in-process, 1 process, accept+process  {rate:8,.0f} msg/s   {_percentiles(latencies)}")
    return rate


def _store_then_process(messages: list[bytes], tag: str, workers: int) -> float:
    """Accept everything first (the webhook side), then process with ``workers`` OS processes."""
    address = _mailbox(f"workers{workers}-{tag}").address
    accept_latencies = []
    started = time.perf_counter()
    receipt_ids = []
    for number, raw in enumerate(messages):
        begun = time.perf_counter()
        receipt_ids.append(_accept(_tagged(raw, f"w{workers}-{tag}"), address, f"w{workers}-{tag}-{number}"))
        accept_latencies.append(time.perf_counter() - begun)
    accept_seconds = time.perf_counter() - started
    print(
        f"  accept only (webhook side), 1 process  {len(messages) / accept_seconds:8,.0f} msg/s   "
        f"{_percentiles(accept_latencies)}"
    )
    connections.close_all()  # each forked worker opens its own connection
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
        results = list(pool.map(_process, [receipt_ids[i::workers] for i in range(workers)]))
    process_seconds = time.perf_counter() - started
    latencies = [latency for result in results for latency in result[0]]
    outcomes: dict[str, int] = {}
    for result in results:
        for status, count in result[2].items():
            outcomes[status] = outcomes.get(status, 0) + count
    rate = len(messages) / process_seconds
    peaks = ", ".join(f"{result[1] / 1024:.0f} MB" for result in results)
    print(f"  process, {workers} worker process(es)        {rate:8,.0f} msg/s   {_percentiles(latencies)}")
    print(f"    outcomes {outcomes}; peak memory per worker: {peaks}")
    total = len(messages) / (accept_seconds + process_seconds)
    print(f"  accept then process ({workers} workers), overall {total:8,.0f} msg/s")
    return rate


def run(label: str, messages: list[bytes], workers: int) -> None:
    print(f"\n{label}: {len(messages):,} messages, {sum(map(len, messages)) / 1e6:.1f} MB")
    compat32, _ = measure(stdlib_compat32, messages, 1)
    parse_only, _ = measure(ours, messages, 1)
    print(f"  parse only: stdlib compat32 {compat32:,.0f} msg/s, parse_message {parse_only:,.0f} msg/s (1 core)")
    inline = _in_process(messages, label[:4])
    rates = {count: _store_then_process(messages, label[:4], count) for count in sorted({1, workers})}
    print(
        f"  overhead: parse_message alone is {parse_only / inline:.1f}x the in-process pipeline; "
        f"{workers} workers process {rates[workers] / rates[1]:.2f}x one worker"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=int, default=2_000, help="synthetic messages (0 for none)")
    parser.add_argument("--no-corpora", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # a log line per message (quarantines included) would drown the figures
    _use_bench_database()
    _use_temporary_blob_storage()
    _queue_nothing()
    print("(timings are noisy while other work runs on this machine; 2 cores)")
    if not args.no_corpora and (corpus := corpus_messages()):
        run("real corpora (edge-cases + spamassassin)", corpus, args.workers)
    if args.synthetic:
        run("synthetic", list(synthetic_messages(args.synthetic, domain=BENCH_DOMAIN)), args.workers)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of the main process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
