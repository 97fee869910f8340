"""The thread lists at scale: server time of list pages and unread counts, and inbox requests/s over HTTP.

Fills a separate database (``<name>_ui_bench``, kept between runs) with one mailbox of N messages
in N/5 threads, generated in SQL (not through the pipeline): threads with participants, a tenth
unread, some starred and with attachments, every thread in the Inbox and a tenth also under a user
label. Then prints p50/p95 of

- the selectors alone: the Inbox's first page, a deep keyset page, unread counts per label;
- the whole view (Django test client: middleware, session, selectors, template) for the same pages;
- the whole page through the WSGI handler as a web worker calls it: CPU milliseconds per request (this
  process's time, which other processes on a shared machine barely inflate; the database's is not in it);
- the inbox over HTTP: the web process as production runs it (``python -m mailsite.web``: Granian
  workers with keep-alive, persistent database connections) serving the WSGI application, with 8 concurrent
  keep-alive connections for ``--seconds``, driven by ``wrk`` when it is installed (a C client that
  leaves the cores to the server) or else by Python threads; as requests per second, with the CPU per
  request of the web workers and of the PostgreSQL backends serving them, and the load average.

    .venv/bin/python bench/ui_lists.py [--messages 1000000] [--runs 200] [--seconds 20] [--workers N] [--threads N]
"""

import argparse
import http.client
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
# Served over plain HTTP on the loopback, as behind a TLS-terminating proxy.
SERVER_ENV = {
    "ALLOWED_HOSTS": "127.0.0.1,testserver",
    "SECURE_SSL_REDIRECT": "0",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "LOG_LEVEL": "WARNING",
    "STATIC_ROOT": "/tmp/mailsite-ui-bench-static",
}
os.environ.update(SERVER_ENV)

import django  # noqa: E402 - after the environment it reads

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

FILL_SQL = """
INSERT INTO threads_thread (mailbox_id, subject, normalized_subject, list_id, participants, participant_addresses,
    correspondents, is_manual, is_fragment, message_count, unread_count, starred_count, has_attachments, snippet,
    first_message_at, last_message_at, created_at, updated_at)
SELECT %(mailbox)s, 'Thread ' || g, 'thread ' || g, '',
    jsonb_build_array(
        jsonb_build_object('name', 'Sender ' || (g %% 997), 'address', 's' || (g %% 997) || '@example.org'),
        jsonb_build_object('name', 'Bench', 'address', 'bench@example.org')),
    jsonb_build_array('s' || (g %% 997) || '@example.org'), jsonb_build_array('s' || (g %% 997) || '@example.org'),
    false, false, 5, CASE WHEN g %% 10 = 0 THEN 1 ELSE 0 END, CASE WHEN g %% 50 = 0 THEN 1 ELSE 0 END,
    g %% 7 = 0, 'The first words of message ' || g || ', as a snippet of about this length shows them in the list',
    now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval, now(), now()
FROM generate_series(1, %(threads)s) AS g;

INSERT INTO delivery_blob (sha256, size, storage_key, created_at)
SELECT encode(sha256(('uibench' || g)::bytea), 'hex'), 1000, 'uibench/' || g, now()
FROM generate_series(1, %(messages)s) AS g
ON CONFLICT DO NOTHING;

INSERT INTO mailbox_message (mailbox_id, thread_id, thread_reason, blob_id, message_id, in_reply_to, "references",
    subject, normalized_subject, from_address, from_name, list_id, list_unsubscribe, authentication_results, date,
    received_at, snippet, size, has_attachments, is_read, is_starred, is_draft, spam_verdict, source_tag)
SELECT %(mailbox)s, first.id + (g %% %(threads)s), 'reference', b.id, 'uibench-' || g || '@example.org', '', '{}',
    'Thread', 'thread', 'sender@example.org', 'Sender', '', '', '{}', now() - (g || ' seconds')::interval, now(), '',
    1000, false, true, false, false, 'unknown', 'bench'
FROM generate_series(1, %(messages)s) AS g
CROSS JOIN (SELECT min(id) AS id FROM threads_thread WHERE mailbox_id = %(mailbox)s) AS first
JOIN delivery_blob b ON b.sha256 = encode(sha256(('uibench' || g)::bytea), 'hex');

INSERT INTO mailbox_threadlabel (mailbox_id, label_id, thread_id, message_count, last_message_at, unread_count)
SELECT %(mailbox)s, %(inbox)s, id, message_count, last_message_at, unread_count
FROM threads_thread WHERE mailbox_id = %(mailbox)s;

INSERT INTO mailbox_threadlabel (mailbox_id, label_id, thread_id, message_count, last_message_at, unread_count)
SELECT %(mailbox)s, %(work)s, id, message_count, last_message_at, unread_count
FROM threads_thread WHERE mailbox_id = %(mailbox)s AND id %% 10 = 0;
"""
ADDRESS = "bench@example.org"
PASSWORD = "bench-password-123"


def _use_bench_database(*, fresh: bool) -> str:
    """Switch to the bench database, migrated; kept between runs unless ``fresh``. Returns its name."""
    name = f"{settings.DATABASES['default']['NAME']}_ui_bench"
    connection.settings_dict["TEST"]["NAME"] = name
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=not fresh, serialize=False)
    return name


def _fill(messages: int):  # noqa: ANN202 - returns (mailbox, inbox label)
    from mailbox.models import Label, Mailbox
    from mailbox.services import mailbox_create
    from mailbox.services.preferences import user_label_create

    mailbox = Mailbox.objects.filter(address=ADDRESS).first()
    if mailbox is None:
        mailbox = mailbox_create(address=ADDRESS, password=PASSWORD)
        user_label_create(mailbox=mailbox, name="Work", colour="#188038")
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    work = Label.objects.get(mailbox=mailbox, name="Work")
    if mailbox.messages.count() < messages:
        started = time.perf_counter()
        print(f"filling {messages:,} messages in {messages // 5:,} threads ...", flush=True)
        with connection.cursor() as cursor:
            params = {"mailbox": mailbox.id, "inbox": inbox.id, "work": work.id}
            cursor.execute(FILL_SQL, {**params, "threads": messages // 5, "messages": messages})
            # What autovacuum does soon after in production: statistics, and the visibility map
            # that lets the unread counts come from the index alone.
            cursor.execute("VACUUM ANALYZE")
        print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)
    return mailbox, inbox


def _time(label: str, call: Callable[[], object], runs: int) -> None:
    """Wall-clock p50/p95 and this process's CPU time per call (the part other processes on a
    shared machine cannot inflate; the database's own time is not in it)."""
    first = call()
    assert getattr(first, "status_code", 200) == 200, first
    samples, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(
        f"{label:<48} p50 {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   "
        f"(cpu p50 {statistics.median(cpu):6.2f} ms)",
        flush=True,
    )


def _browser_cookies(mailbox) -> str:  # noqa: ANN001
    """The Cookie header of a logged-in browser tab: the session, and the CSRF cookie that the
    first page with a form set (without it, every page would make and set a new CSRF secret)."""
    from django.test import Client

    client = Client()
    client.force_login(mailbox.user)
    assert client.get("/").status_code == 200
    names = (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME)
    return "; ".join(f"{name}={client.cookies[name].value}" for name in names)


def _wsgi_cpu(cookie: str, path: str, query: str, runs: int) -> None:
    """The whole request through Django's WSGI handler, as a web worker runs it: CPU ms."""
    from django.core.handlers.wsgi import WSGIHandler

    application = WSGIHandler()
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_COOKIE": cookie,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
    }
    statuses: list[str] = []

    def call() -> None:
        body = application(
            {**environ, "wsgi.input": io.BytesIO(b"")}, lambda status, headers, *_: statuses.append(status)
        )
        b"".join(body)

    call()
    assert statuses[-1].startswith("200"), statuses[-1]
    cpu = []
    for _ in range(runs):
        started = time.process_time()
        call()
        cpu.append((time.process_time() - started) * 1000)
    cpu.sort()
    print(
        f"{'wsgi: ' + (path + ('?older=…' if query else '')) + ' CPU per request':<48} "
        f"p50 {statistics.median(cpu):7.2f} ms   p10 {cpu[len(cpu) // 10]:7.2f} ms   (this process, no database)",
        flush=True,
    )


def _process_stats() -> dict[int, tuple[int, int]]:
    """Every process's (parent pid, user + system CPU ticks), from /proc."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    return stats


def _children_cpu_seconds(parent: int) -> float:
    """User + system CPU of ``parent``'s child processes (the web workers)."""
    return sum(ticks for ppid, ticks in _process_stats().values() if ppid == parent) / os.sysconf("SC_CLK_TCK")


def _backends_cpu_seconds(database: str) -> float | None:
    """User + system CPU of the PostgreSQL backends connected to ``database`` (the workers' persistent
    connections); ``None`` when the server's processes are not visible from here."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database])
        pids = {row[0] for row in cursor.fetchall()}
    stats = _process_stats()
    if not pids or not pids <= stats.keys():
        return None
    return sum(stats[pid][1] for pid in pids) / os.sysconf("SC_CLK_TCK")


def _server_shape(environ: dict[str, str]) -> str:
    """How the web process runs under ``environ`` (``mailsite.web``'s settings, as production)."""
    from mailsite.web import server_options

    options = server_options(environ)
    return f"Granian {options['workers']} workers x {options['blocking_threads']} threads"


def _wrk(port: int, cookie: str, *, clients: int, seconds: float) -> tuple[int, int, str]:
    """Drive the inbox with wrk; returns (requests, non-2xx responses, wrk's latency line)."""
    command = [
        "wrk",
        f"-t{min(2, clients)}",
        f"-c{clients}",
        f"-d{seconds:.0f}s",
        "--latency",
        "-H",
        f"Cookie: {cookie}",
        f"http://127.0.0.1:{port}/",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    latency = " ".join(line.strip() for line in out.splitlines() if re.match(r"\s+(50|99)%", line))
    return requests, int(bad.group(1)) if bad else 0, f"latency {latency}" + (f"; {errors.group(0)}" if errors else "")


def _server_environment(database: str, port: int, workers: int | None, threads: int | None) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{connection.settings_dict['USER']}@{connection.settings_dict['HOST']}:"
        f"{connection.settings_dict['PORT']}/{database}",
        "CONN_MAX_AGE": "600",
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(port),
        **({"WEB_CONCURRENCY": str(workers)} if workers else {}),
        **({"WEB_THREADS": str(threads)} if threads else {}),
    }


def _serve(environ: dict[str, str], port: int) -> subprocess.Popen:
    """The web process as production runs it (``python -m mailsite.web``) under ``environ``."""
    server = subprocess.Popen([sys.executable, "-m", "mailsite.web"], cwd=REPO, env=environ)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            probe.request("GET", "/accounts/login/")
            if probe.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the web process did not start")


def _load(port: int, cookie: str, *, clients: int, seconds: float) -> tuple[int, int, list[float]]:
    """``clients`` threads requesting the inbox in a loop; returns (ok, errors, latencies in ms)."""
    stop = time.monotonic() + seconds
    counts = {"ok": 0, "errors": 0}
    latencies: list[float] = []
    lock = threading.Lock()

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Cookie": cookie, "Host": "127.0.0.1"}
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                conn.request("GET", "/", headers=headers)
                response = conn.getresponse()
                response.read()
                good = response.status == 200
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                good = False
            with lock:
                counts["ok" if good else "errors"] += 1
                latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts["ok"], counts["errors"], latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, help="web worker processes (default: mailsite.web's)")
    parser.add_argument("--threads", type=int, help="threads per web worker (default: mailsite.web's)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the bench database")
    parser.add_argument("--load-tool", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    database = _use_bench_database(fresh=args.fresh)
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)  # the production static files set-up
    from django.test import Client

    from mailbox import selectors
    from mailbox.models import ThreadLabel

    mailbox, inbox = _fill(args.messages)
    from mailsite.startup import app_loaded_freeze

    app_loaded_freeze()  # as the web processes do once started (mailsite.wsgi)
    view = selectors.ThreadListView(kind="label", label=inbox)
    rows = ThreadLabel.objects.filter(mailbox=mailbox, label=inbox).order_by("-last_message_at", "-thread_id")
    total = rows.count()
    deep = rows[total - 100]
    deep_cursor = selectors.Cursor(deep.last_message_at, deep.thread_id)
    print(f"mailbox of {mailbox.messages.count():,} messages, {total:,} threads in the Inbox", flush=True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared)", flush=True)

    first_page = lambda: selectors.thread_list(mailbox=mailbox, view=view)  # noqa: E731
    _time("selector: inbox first page (50 threads)", first_page, args.runs)
    _time(
        f"selector: inbox deep page (thread {total - 100:,})",
        lambda: selectors.thread_list(mailbox=mailbox, view=view, older_than=deep_cursor),
        args.runs,
    )
    _time("selector: unread counts per label", lambda: selectors.label_unread_counts(mailbox=mailbox), args.runs)
    _time(
        "selector: labels + unread counts + latest event",
        lambda: selectors.label_overview(mailbox=mailbox),
        args.runs,
    )
    all_mail = selectors.ThreadListView(kind="all")
    _time("selector: All mail first page", lambda: selectors.thread_list(mailbox=mailbox, view=all_mail), args.runs)

    client = Client()
    client.force_login(mailbox.user)
    _time("view: inbox first page (whole response)", lambda: client.get("/"), args.runs)
    _time("view: inbox deep page (whole response)", lambda: client.get("/", {"older": deep_cursor.encode()}), args.runs)

    cookie = _browser_cookies(mailbox)
    _wsgi_cpu(cookie, "/", "", args.runs)
    _wsgi_cpu(cookie, "/", f"older={deep_cursor.encode()}", args.runs)
    connection.close()
    server_environment = _server_environment(database, args.port, args.workers, args.threads)
    server = _serve(server_environment, args.port)
    use_wrk = args.load_tool == "wrk" or (args.load_tool == "auto" and shutil.which("wrk"))
    try:
        _load(args.port, cookie, clients=args.clients, seconds=5)  # warm every worker
        load_before, cpu_before = os.getloadavg()[0], _children_cpu_seconds(server.pid)
        database_before = _backends_cpu_seconds(database)
        if use_wrk:
            ok, errors, latency = _wrk(args.port, cookie, clients=args.clients, seconds=args.seconds)
        else:
            ok, errors, latencies = _load(args.port, cookie, clients=args.clients, seconds=args.seconds)
            latencies.sort()
            p95 = latencies[int(len(latencies) * 0.95) - 1]
            latency = f"latency p50 {statistics.median(latencies):.1f} ms p95 {p95:.1f} ms"
        worker_cpu = _children_cpu_seconds(server.pid) - cpu_before
        database_after = _backends_cpu_seconds(database)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"HTTP inbox, {_server_shape(server_environment)}, {args.clients} concurrent connections "
        f"({'wrk' if use_wrk else 'Python threads'}), {args.seconds:.0f} s: "
        f"{ok / args.seconds:.0f} requests/s ({errors} errors), {latency}",
        flush=True,
    )
    database_cpu = (
        f"PostgreSQL backends' {(database_after - database_before) * 1000 / max(ok, 1):.2f} ms; "
        if database_before is not None and database_after is not None
        else ""
    )
    print(
        f"  CPU per request: web workers' {worker_cpu * 1000 / max(ok, 1):.2f} ms, {database_cpu}load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (1 min, {os.cpu_count()} cores, shared)",
        flush=True,
    )


if __name__ == "__main__":
    main()
