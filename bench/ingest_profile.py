"""What one message costs on each side of ingestion, in this process: CPU, wall time and queries.

Wall-clock rates on 2 shared cores say more about the neighbours than about the code; CPU time
(``time.process_time`` for this process, /proc for its PostgreSQL backend) and the number of
statements stay meaningful under load. For the real corpora and a synthetic set it measures:

- store: ``inbound_accept_many`` in chunks of ``IMPORT_CHUNK`` (the import command's side: blobs
  and receipts committed, the parse queued to an in-memory broker nobody drains);
- batch: ``receipts_process_batch`` over those receipts in batches of ``MAILSITE_INBOUND_BATCH_SIZE``
  (what a worker runs for an import batch, or for a webhook task taking other waiting receipts along);
- single: ``receipt_process`` on a sample (a receipt alone: retries, and a batch handed back).

    .venv/bin/python bench/ingest_profile.py [--count 1000] [--corpus 1000] [--profile batch.prof]

``--profile`` writes cProfile statistics of the batch side and prints the top functions. Uses a
separate database (``<name>_ingest_profile``, rebuilt each run) and blobs under a temporary folder.
"""

import argparse
import cProfile
import logging
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
os.environ["MAILSITE_VAR_DIR"] = tempfile.mkdtemp(prefix="mailsite-ingest-profile-")
os.environ["CELERY_BROKER_URL"] = "memory://"  # parse tasks are queued, never run: we call the services
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from parse import corpus_messages, synthetic_messages  # noqa: E402
from procstat import process_cpu_seconds  # noqa: E402

BENCH_DOMAIN = "bench.example.test"
SINGLE_SAMPLE = 200


class Meter:
    """CPU of this process and of its PostgreSQL backend, wall time and statements, over a block."""

    def __init__(self) -> None:
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):  # noqa: ANN001 - Django's wrapper protocol
        self.queries += 1
        return execute(sql, params, many, context)

    def measure(self, work: Callable[[], int]) -> tuple[int, float, float, float, int]:
        """(messages, python CPU s, PostgreSQL CPU s, wall s, statements) of ``work()``."""
        backend = _backend_pid()
        self.queries = 0
        cpu, db_cpu, wall = time.process_time(), process_cpu_seconds(backend), time.perf_counter()
        with connection.execute_wrapper(self):
            done = work()
        return (
            done,
            time.process_time() - cpu,
            process_cpu_seconds(backend) - db_cpu,
            time.perf_counter() - wall,
            self.queries,
        )


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _print(name: str, figures: tuple[int, float, float, float, int]) -> None:
    done, cpu, db_cpu, wall, queries = figures
    if not done:
        return
    print(
        f"  {name:<7} {done:6,} msgs: python {cpu * 1000 / done:6.2f} ms/msg, PostgreSQL {db_cpu * 1000 / done:6.2f} "
        f"ms/msg, {queries / done:6.2f} queries/msg, wall {wall * 1000 / done:6.2f} ms/msg "
        f"(CPU-bound ceiling on 2 cores ≈ {2000 / ((cpu + db_cpu) * 1000 / done):,.0f} msg/s)",
        flush=True,
    )


def _tagged(raw: bytes, tag: str) -> bytes:
    if raw.startswith(b"From "):
        raw = raw.partition(b"\n")[2]
    return f"X-Bench-Run: {tag}\r\n".encode() + raw


def run(label: str, messages: list[bytes], args: argparse.Namespace) -> None:
    from delivery.models import InboundReceipt
    from delivery.services import Arrival
    from mailbox.importing import IMPORT_CHUNK
    from mailbox.services import mailbox_create
    from mailbox.services.ingest import inbound_accept_many
    from mailbox.services.receiving import receipt_process, receipts_process_batch

    tag = label[:4]
    address = mailbox_create(address=f"{tag}@{BENCH_DOMAIN}", password=None).address
    arrivals = [
        Arrival(source="import", raw=_tagged(raw, tag), event_id=f"{tag}-{n}", envelope_recipients=(address,))
        for n, raw in enumerate(messages)
    ]
    single = arrivals[-min(SINGLE_SAMPLE, len(arrivals) // 5) :] if len(arrivals) >= 5 else []
    batched = arrivals[: len(arrivals) - len(single)]
    print(f"\n{label}: {len(messages):,} messages ({len(batched):,} batched, {len(single):,} alone)", flush=True)
    meter = Meter()

    def store() -> int:
        ids = []
        for start in range(0, len(arrivals), IMPORT_CHUNK):
            ids += [s.receipt.id for s in inbound_accept_many(arrivals=arrivals[start : start + IMPORT_CHUNK])]
        return len(ids)

    _print("store", meter.measure(store))
    rows = InboundReceipt.objects.filter(event_id__startswith=f"{tag}-").order_by("id")
    ids = list(rows.values_list("id", flat=True))
    batch_ids, single_ids = ids[: len(batched)], ids[len(batched) :]
    size = settings.MAILSITE_INBOUND_BATCH_SIZE

    def batch() -> int:
        done = 0
        for start in range(0, len(batch_ids), size):
            outcome = receipts_process_batch(receipt_ids=batch_ids[start : start + size])
            if outcome.handed_back:
                raise SystemExit(f"a batch failed: {outcome.error}")
            done += len(outcome.finished)
        return done

    profiler = cProfile.Profile(time.process_time) if args.profile else None
    if profiler:
        profiler.enable()
    _print("batch", meter.measure(batch))
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)

    def alone() -> int:
        for receipt_id in single_ids:
            receipt_process(receipt_id=receipt_id)
        return len(single_ids)

    _print("single", meter.measure(alone))
    statuses = dict(
        InboundReceipt.objects.filter(event_id__startswith=f"{tag}-").values_list("status").annotate(n=Count("id"))
    )
    print(f"  outcomes: {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000, help="synthetic messages (0 for none)")
    parser.add_argument("--corpus", type=int, default=1_000, help="real corpus messages (0 for none, -1 for all)")
    parser.add_argument("--profile", help="write the batch side's cProfile statistics to this file")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    connection.settings_dict["TEST"]["NAME"] = f"{settings.DATABASES['default']['NAME']}_ingest_profile"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"(load average {load}; batch size {settings.MAILSITE_INBOUND_BATCH_SIZE}; CPU per message stays meaningful)")
    if args.corpus:
        corpus = corpus_messages()
        step = 1 if args.corpus < 0 else max(1, len(corpus) // args.corpus)  # a spread of both corpora
        run("real corpora", corpus[::step][: args.corpus] if args.corpus > 0 else corpus, args)
    if args.count:
        run("synthetic", list(synthetic_messages(args.count, domain=BENCH_DOMAIN)), args)


if __name__ == "__main__":
    main()
