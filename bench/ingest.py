"""End-to-end ingestion with real Celery workers: raw bytes → receipts → workers → committed metadata.

Runs against a separate database (``<name>_ingest_bench``, rebuilt each run), blobs under a
temporary folder and a private ``redis-server`` on a free port (the broker), with 1 and then 2
worker processes (``celery worker --pool=solo``, one OS process each). For the real corpora and a
synthetic set it prints, per number of workers:

- bulk import: ``import_mail``'s path (``mail_import`` over an mbox of the messages: chunks of
  receipts committed together, parse queued in batches), messages/s from the first byte read to
  the last receipt final (parsed or quarantined);
- webhook path: ``inbound_accept`` once per message, as a webhook or the SMTP listener calls it
  (one parse task queued per message), messages/s to the last receipt final;
- p50/p95 latency per message (receipt stored → parsed, database clock) and peak RSS per worker;
- CPU per message of the feeder, the workers (until every queued task has run) and PostgreSQL;
  SQL statements per message of the feeder and the workers (``bench/worker_stats.py``, loaded
  into the workers; BEGIN/COMMIT not counted), the tasks the workers ran, the load average at the end;
- the parse-only ceiling on the same messages (standard library ``compat32`` alone, and our
  ``parse_message``), so the pipeline's overhead shows as a ratio.

    .venv/bin/python bench/ingest.py [--count 2000] [--no-corpora] [--workers 1 2] [--modes import webhook]
                                     [--feeders 1]

One feeder calling ``inbound_accept`` in a loop waits on a database round trip per statement (5
per arrival) and the broker; on a loaded machine it, not the workers, sets the webhook path's rate.
``--feeders N`` feeds from N threads at once, as N web processes answering webhooks would.

The issue's synthetic set is 100k messages: ``--count 100000`` (tens of minutes on 2 shared cores).
"""

import argparse
import copy
import itertools
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
os.environ["MAILSITE_VAR_DIR"] = tempfile.mkdtemp(prefix="mailsite-ingest-bench-")

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from parse import corpus_messages, measure, ours, stdlib_compat32, synthetic_messages  # noqa: E402
from procstat import process_cpu_seconds  # noqa: E402

from mailsite.celery import app  # noqa: E402
from mailsite.stdlib_mailbox import stdlib_mailbox  # noqa: E402

BENCH_DOMAIN = "bench.example.test"
DEADLINE = 3600  # seconds one scenario may take before the bench gives up on it


def _use_bench_database() -> str:
    connection.settings_dict["TEST"]["NAME"] = f"{settings.DATABASES['default']['NAME']}_ingest_bench"
    return connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_redis() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    url = f"redis://127.0.0.1:{port}/0"
    app.conf.broker_url, app.conf.task_always_eager = url, False
    return server, url


def _worker_env(database: str, broker_url: str) -> dict[str, str]:
    params = connection.get_connection_params()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_TASK_ALWAYS_EAGER"}}
    host, port, user = params.get("host") or "127.0.0.1", params.get("port") or 5432, params.get("user") or "postgres"
    env.update(
        DATABASE_URL=f"postgres://{user}@{host}:{port}/{database}",
        REDIS_URL=broker_url,
        CELERY_BROKER_URL=broker_url,
        LOG_LEVEL="WARNING",
        CELERY_SKIP_CHECKS="1",
    )
    return env


def _start_workers(count: int, env: dict[str, str], logs: Path, tag: str) -> list[subprocess.Popen]:
    workers = []
    env = {**env, "BENCH_WORKER_STATS": str(_stats_folder(logs, tag))}
    for number in range(count):
        node = f"bench{number}-{os.getpid()}@{socket.gethostname()}"
        command = [sys.executable, "-m", "celery", "-A", "mailsite", "worker", "--pool=solo", "-n", node]
        command += ["--include", "bench.worker_stats"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
        log = (logs / f"{tag}-worker{number}.log").open("w")
        workers.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[node], timeout=0.5):
            if time.monotonic() > deadline or workers[-1].poll() is not None:
                raise SystemExit(f"worker {node} did not start: see {logs}")
    return workers


def _stats_folder(logs: Path, tag: str) -> Path:
    folder = logs / f"{tag}-stats"
    folder.mkdir(exist_ok=True)
    return folder


def _worker_counts(logs: Path, tag: str) -> dict[str, int]:
    """Statements and tasks of every worker of a scenario, written when they stopped."""
    totals = {"statements": 0, "tasks": 0}
    for path in _stats_folder(logs, tag).glob("*.json"):
        for key, value in json.loads(path.read_text()).items():
            totals[key] += value
    return totals


class _StatementCounter:
    """Counts statements, from any number of feeder threads."""

    def __init__(self) -> None:
        self._counted = itertools.count()

    def __call__(self, execute, sql, params, many, context):  # noqa: ANN001 - Django's wrapper protocol
        next(self._counted)  # atomic under the GIL, unlike += 1
        return execute(sql, params, many, context)

    @property
    def count(self) -> int:
        return next(copy.copy(self._counted))


def _peak_rss_mb(process: subprocess.Popen) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _database_cpu() -> dict[int, float]:
    """CPU time of every PostgreSQL backend serving the bench database, by process id."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return {pid: process_cpu_seconds(pid) for (pid,) in cursor.fetchall()}


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _tagged(raw: bytes, tag: str) -> bytes:
    """Distinct bytes per scenario (so blobs and messages are new): a trace header first."""
    if raw.startswith(b"From "):
        raw = raw.partition(b"\n")[2]
    return f"X-Bench-Run: {tag}\r\n".encode() + raw


def _write_mbox(messages: list[bytes], path: Path) -> None:
    box = stdlib_mailbox().mbox(path, create=True)
    box.lock()
    for raw in messages:
        box.add(raw)
    box.flush()
    box.unlock()
    box.close()


def _last_receipt_id() -> int:
    """Receipts after this one are the scenario's: polling them by id stays an index scan, where a
    filter on the envelope read every receipt of the database each time (PostgreSQL CPU counted
    as the pipeline's)."""
    from delivery.models import InboundReceipt

    return InboundReceipt.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _wait_final(receipt_filter: dict, count: int) -> None:
    from delivery.models import InboundReceipt

    deadline = time.monotonic() + DEADLINE
    waiting = InboundReceipt.objects.filter(**receipt_filter, status=InboundReceipt.Status.RECEIVED)
    while InboundReceipt.objects.filter(**receipt_filter).count() < count or waiting.exists():
        if time.monotonic() > deadline:
            raise SystemExit("gave up waiting for the workers")
        time.sleep(0.1)


def _wait_drained() -> None:
    """Until no task is queued or running on the private broker (kombu's Redis transport keeps
    unacknowledged tasks in the ``unacked`` hash)."""
    client = redis.Redis.from_url(app.conf.broker_url)
    deadline = time.monotonic() + DEADLINE
    while client.llen("celery") or client.hlen("unacked"):
        if time.monotonic() > deadline:
            raise SystemExit("gave up waiting for the queue to drain")
        time.sleep(0.1)


def _latencies(receipt_filter: dict) -> tuple[list[float], dict[str, int]]:
    from django.db.models import Count

    from delivery.models import InboundReceipt

    rows = InboundReceipt.objects.filter(**receipt_filter)
    outcomes = {row["status"]: row["n"] for row in rows.values("status").annotate(n=Count("id"))}
    pairs = rows.filter(parsed_at__isnull=False).values_list("received_at", "parsed_at")
    return [(parsed - received).total_seconds() for received, parsed in pairs], outcomes


def _percentiles(latencies: list[float]) -> str:
    if not latencies:
        return "no latency (nothing parsed)"
    ordered = sorted(latencies)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms  p95 {p95 * 1000:8.1f} ms"


def _feed_import(path: Path, address: str) -> int:
    from mailbox.importing import mail_import, mail_sources_find
    from mailbox.models import Mailbox

    sources, _ = mail_sources_find([path])
    return mail_import(mailbox=Mailbox.objects.get(address=address), sources=sources).imported


def _feed_webhook(messages: list[bytes], address: str, tag: str, counter: "_StatementCounter", feeders: int) -> int:
    """``inbound_accept`` per message, from ``feeders`` threads at once (as that many web processes
    answering webhooks would), each with its own database connection."""
    from mailbox.services.ingest import inbound_accept

    def feed(share: int) -> None:
        try:
            with connection.execute_wrapper(counter):
                for number in range(share, len(messages), feeders):
                    inbound_accept(
                        source="esp_webhook",
                        esp="bench",
                        raw=messages[number],
                        event_id=f"{tag}-{number}",
                        envelope_recipients=[address],
                    )
        finally:
            if share:  # the other threads' connections; the main thread keeps its own
                connection.close()

    threads = [threading.Thread(target=feed, args=(share,)) for share in range(1, feeders)]
    for thread in threads:
        thread.start()
    feed(0)
    for thread in threads:
        thread.join()
    return len(messages)


def scenario(
    messages: list[bytes], *, mode: str, workers: int, tag: str, env: dict, logs: Path, feeders: int = 1
) -> float:
    from mailbox.services import mailbox_create

    address = mailbox_create(address=f"{tag}@{BENCH_DOMAIN}", password=None).address
    tagged = [_tagged(raw, tag) for raw in messages]
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{tag}-"))
    if mode == "import":
        _write_mbox(tagged, folder / "bench.mbox")  # written before the clock starts
    first_receipt = _last_receipt_id()
    running = _start_workers(workers, env, logs, tag)
    workers_cpu = [process_cpu_seconds(w.pid) for w in running]
    database_cpu, feeder_cpu = _database_cpu(), time.process_time()
    started = time.perf_counter()
    feed = (lambda: _feed_import(folder / "bench.mbox", address)) if mode == "import" else None
    feeder_statements = _StatementCounter()
    if feed:
        with connection.execute_wrapper(feeder_statements):
            stored = feed()
    else:
        stored = _feed_webhook(tagged, address, tag, feeder_statements, feeders)
    fed = time.perf_counter() - started
    # The feeder's own work ends here; polling for the workers below is the bench's, not the import's.
    feeder_cpu = time.process_time() - feeder_cpu
    receipt_filter = {"pk__gt": first_receipt}  # the scenario's receipts, read through the primary key
    _wait_final(receipt_filter, stored)
    elapsed = time.perf_counter() - started
    _wait_drained()  # the tasks that found their receipt done cost CPU too; and none is left for the next run
    workers_cpu = sum(process_cpu_seconds(w.pid) - before for w, before in zip(running, workers_cpu, strict=True))
    database_cpu = sum(cpu - database_cpu.get(pid, 0.0) for pid, cpu in _database_cpu().items())
    peaks = ", ".join(f"{_peak_rss_mb(worker):.0f} MB" for worker in running)
    _stop(running)
    counts = _worker_counts(logs, tag)
    shutil.rmtree(folder, ignore_errors=True)
    latencies, outcomes = _latencies(receipt_filter)
    done = sum(outcomes.values())
    rate = done / elapsed
    name = "bulk import " if mode == "import" else "webhook path"
    print(
        f"  {name} {workers} worker(s): {rate:7,.0f} msg/s end to end ({done:,} in {elapsed:6.1f}s; "
        f"stored in {fed:5.1f}s by {feeders} feeder(s))  {_percentiles(latencies)}  peak RSS/worker {peaks}  {outcomes}"
    )
    per_message = [cpu * 1000 / done for cpu in (feeder_cpu, workers_cpu, database_cpu)]
    print(
        f"    CPU per message: feeder {per_message[0]:.1f} ms, workers {per_message[1]:.1f} ms, "
        f"PostgreSQL {per_message[2]:.1f} ms → {2000 / sum(per_message):,.0f} msg/s if 2 cores were ours alone"
    )
    load = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"    SQL statements per message: feeder {feeder_statements.count / done:.1f}, workers "
        f"{counts['statements'] / done:.1f} ({counts['tasks']:,} tasks run); load average {load} at the end"
    )
    return rate


def run(label: str, messages: list[bytes], args: argparse.Namespace, env: dict, logs: Path) -> None:
    print(f"\n{label}: {len(messages):,} messages, {sum(map(len, messages)) / 1e6:.1f} MB", flush=True)
    compat32, _ = measure(stdlib_compat32, messages, 1)
    parse_only, _ = measure(ours, messages, 1)
    print(
        f"  parse-only ceiling (1 core): stdlib compat32 {compat32:,.0f} msg/s, parse_message {parse_only:,.0f} msg/s"
    )
    for mode in args.modes:
        for workers in args.workers:
            tag = f"{label[:4]}-{mode}-{workers}"
            feeders = args.feeders if mode == "webhook" else 1
            rate = scenario(messages, mode=mode, workers=workers, tag=tag, env=env, logs=logs, feeders=feeders)
            print(f"    the compat32 parse alone is {compat32 / rate:,.0f}x the pipeline's rate", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2_000, help="synthetic messages (0 for none; 100000 in full)")
    parser.add_argument("--no-corpora", action="store_true")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", choices=["import", "webhook"], default=["import", "webhook"])
    parser.add_argument(
        "--feeders", type=int, default=1, help="webhook mode: threads calling inbound_accept at once (web processes)"
    )
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("needs the redis-server program (the bench runs its own broker)")
    logging.disable(logging.WARNING)  # a log line per message would drown the figures
    database = _use_bench_database()
    server, broker_url = _start_redis()
    logs = Path(tempfile.mkdtemp(prefix="bench-ingest-logs-"))
    env = _worker_env(database, broker_url)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"(2 shared cores, load average {load}; batch size {settings.MAILSITE_INBOUND_BATCH_SIZE}; logs in {logs})")
    try:
        if not args.no_corpora and (corpus := corpus_messages()):
            run("real corpora (edge-cases + spamassassin)", corpus, args, env, logs)
        if args.count:
            run("synthetic", list(synthetic_messages(args.count, domain=BENCH_DOMAIN)), args, env, logs)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
