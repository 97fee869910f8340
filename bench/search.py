"""Search at a million messages: p50/p95 of ``thread_search`` for rare, medium and common terms.

Fills a separate database (``<name>_search_bench``, kept between runs; ``--fresh`` rebuilds it) in
bulk SQL, not through ingestion: one mailbox of N messages in N/5 threads, every message in the
Inbox, a 1% share also in Spam, bodies of 40 words drawn from a skewed 50,000-word vocabulary plus
marker words with known frequencies:

- ``rareword``: 20 messages; ``mediumword``: 1% (10k at 1M); ``commonword``: 12.5% (125k at 1M);
- senders ``sender0`` … ``sender999`` (from: searches), subjects ``Subject <n>``.

A thread k holds the messages g ≡ k (mod N/5), so its summary (unread, starred, attachments) is
that of its five messages: flags repeat every 10, 100 and 20 messages. The documents are built
with the same weights as ``mailbox.search.indexing`` (ASCII text, so the
Python normalisation has nothing to change). Each query runs through the real selector, 50
threads a page sorted by date; then a deep page (the 3rd) of the common term.

    .venv/bin/python bench/search.py [--messages 1000000] [--runs 100] [--fresh]
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench.procstat import process_cpu_seconds  # noqa: E402

FILL_SQL = """
SET maintenance_work_mem = '512MB';
CREATE TEMP TABLE bench_base AS SELECT timestamptz '2026-11-01 00:00:00+00' AS t0;

INSERT INTO threads_thread (mailbox_id, subject, normalized_subject, list_id, participants, participant_addresses,
    correspondents, is_manual, is_fragment, message_count, unread_count, starred_count, has_attachments, snippet,
    first_message_at, last_message_at, created_at, updated_at)
SELECT %(mailbox)s, 'Subject ' || k, 'subject ' || k, '', '[]', '[]', '[]', false, false, 5,
    CASE WHEN k %% 10 = 0 THEN 5 ELSE 0 END, CASE WHEN k %% 100 = 0 THEN 5 ELSE 0 END, k %% 20 = 0,
    'snippet ' || k, t0 - ((k + 4 * %(threads)s) || ' seconds')::interval,
    t0 - ((CASE WHEN k = 0 THEN %(threads)s ELSE k END) || ' seconds')::interval, now(), now()
FROM generate_series(0, %(threads)s - 1) AS k, bench_base
ORDER BY k;

CREATE TEMP TABLE bench_thread AS
SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM threads_thread WHERE mailbox_id = %(mailbox)s;
CREATE UNIQUE INDEX ON bench_thread (k);

INSERT INTO delivery_blob (sha256, size, storage_key, created_at)
SELECT encode(sha256(('search-bench' || g)::bytea), 'hex'), 1000, 'search-bench/' || g, now()
FROM generate_series(1, %(messages)s) AS g
ON CONFLICT DO NOTHING;

-- Bulk load without the GIN indexes, then build them once (much faster than row by row).
DROP INDEX message_search_gin;
DROP INDEX message_address_gin;

INSERT INTO mailbox_message (mailbox_id, thread_id, thread_reason, blob_id, message_id, in_reply_to, "references",
    subject, normalized_subject, from_address, from_name, list_id, list_unsubscribe, authentication_results,
    date, received_at, snippet, size, has_attachments, is_read, is_starred, is_draft, spam_verdict, source_tag,
    search_document, address_document)
SELECT %(mailbox)s, t.id, 'reference', b.id, 'search-bench-' || g || '@example.org', '', '{}',
    'Subject ' || t.k, 'subject ' || t.k, 'sender' || (g %% 1000) || '@example.org', 'Sender ' || (g %% 1000), '', '',
    '{}', t0 - (g || ' seconds')::interval, t0, '', 1000, g %% 20 = 0, g %% 10 <> 0, g %% 100 = 0, false, 'unknown',
    'bench',
    setweight(to_tsvector('simple', 'Subject ' || t.k), 'A')
    || setweight(to_tsvector('simple', 'Sender ' || (g %% 1000) || ' sender' || (g %% 1000) || '@example.org'), 'B')
    || setweight(to_tsvector('simple', body.text
        || CASE WHEN g %% 8 = 0 THEN ' commonword' ELSE '' END
        || CASE WHEN g %% 100 = 3 THEN ' mediumword' ELSE '' END
        || CASE WHEN g %% (%(messages)s / 20) = 7 THEN ' rareword' ELSE '' END), 'D'),
    setweight(to_tsvector('simple', 'Sender ' || (g %% 1000) || ' sender' || (g %% 1000) || '@example.org'), 'A')
    || setweight(to_tsvector('simple', 'bench@example.org'), 'B')
FROM generate_series(1, %(messages)s) AS g
CROSS JOIN bench_base
JOIN bench_thread t ON t.k = g %% %(threads)s
JOIN delivery_blob b ON b.sha256 = encode(sha256(('search-bench' || g)::bytea), 'hex')
CROSS JOIN LATERAL (
    SELECT string_agg('w' || floor(power(random(), 3) * 50000)::int, ' ') AS text
    FROM generate_series(1, 40) AS i WHERE g > 0
) AS body;

CREATE INDEX message_search_gin ON mailbox_message USING gin (mailbox_id, search_document);
CREATE INDEX message_address_gin ON mailbox_message USING gin (mailbox_id, address_document);

INSERT INTO mailbox_messagelabel (mailbox_id, message_id, label_id)
SELECT %(mailbox)s, m.id, %(inbox)s FROM mailbox_message m WHERE m.mailbox_id = %(mailbox)s;
INSERT INTO mailbox_messagelabel (mailbox_id, message_id, label_id)
SELECT %(mailbox)s, m.id, %(spam)s FROM mailbox_message m WHERE m.mailbox_id = %(mailbox)s AND m.id %% 100 = 50;

INSERT INTO mailbox_threadlabel (mailbox_id, label_id, thread_id, message_count, last_message_at, unread_count)
SELECT %(mailbox)s, %(inbox)s, id, message_count, last_message_at, unread_count
FROM threads_thread WHERE mailbox_id = %(mailbox)s;
VACUUM ANALYZE threads_thread;
VACUUM ANALYZE mailbox_message;
VACUUM ANALYZE mailbox_messagelabel;
"""


def _use_bench_database(*, fresh: bool) -> None:
    """Switch to the bench database, migrated; kept between runs unless ``fresh``."""
    connection.settings_dict["TEST"]["NAME"] = f"{settings.DATABASES['default']['NAME']}_search_bench"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=not fresh, serialize=False)


def _fill(messages: int):  # noqa: ANN202 - returns the mailbox
    from mailbox.models import Label, Mailbox
    from mailbox.services import mailbox_create

    mailbox = Mailbox.objects.filter(address="bench@example.org").first()
    if mailbox is None:
        mailbox = mailbox_create(address="bench@example.org", password=None)
    if mailbox.messages.count() < messages:
        labels = {lb.role: lb.id for lb in Label.objects.filter(mailbox=mailbox).exclude(role="")}
        started = time.perf_counter()
        print(f"filling {messages:,} messages in {messages // 5:,} threads ...", flush=True)
        connection.set_autocommit(True)
        with connection.cursor() as cursor:
            for statement in FILL_SQL.split(";\n"):
                if statement.strip():
                    cursor.execute(
                        statement,
                        {
                            "mailbox": mailbox.id,
                            "inbox": labels["inbox"],
                            "spam": labels["spam"],
                            "threads": messages // 5,
                            "messages": messages,
                        },
                    )
        print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)
    return mailbox


def _time(label: str, call: Callable[[], object], runs: int, backend_pid: int) -> None:
    """Wall time p50/p95, and the mean CPU time per query of this process and of the PostgreSQL
    backend serving it (read from /proc in 10 ms ticks, hence the mean over all runs)."""
    call()
    samples = []
    cpu_started, backend_started = time.process_time(), process_cpu_seconds(backend_pid)
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    client_cpu = (time.process_time() - cpu_started) * 1000 / runs
    backend_cpu = (process_cpu_seconds(backend_pid) - backend_started) * 1000 / runs
    samples.sort()
    p95 = samples[max(int(len(samples) * 0.95) - 1, 0)]
    print(
        f"{label:<48} p50 {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   "
        f"CPU {backend_cpu:6.1f} ms db + {client_cpu:4.1f} ms python",
        flush=True,
    )


QUERIES = [
    ("rare body term (20 hits)", "rareword"),
    ("medium body term (1%)", "mediumword"),
    ("body word in 0.36% of messages, spread", "w1000"),
    ("common body term (12.5%)", "commonword"),
    ("common term, negated rare", "commonword -rareword"),
    ("two common words (AND)", "commonword w1"),
    ("common OR rare", "commonword OR rareword"),
    ("from: one sender of 1000", "from:sender7"),
    ("from: and a common word", "from:sender7 commonword"),
    ("is:starred (1%)", "is:starred"),
    ("is:unread has:attachment", "is:unread has:attachment"),
    ("subject: rare subject", 'subject:"Subject 4242"'),
    ("phrase in body", '"w0 w1"'),
    ("no match at all", "nosuchwordanywhere"),
    ("in:spam common", "in:spam commonword"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the bench database")
    parser.add_argument("--fill-only", action="store_true")
    args = parser.parse_args()
    _use_bench_database(fresh=args.fresh)
    mailbox = _fill(args.messages)
    if args.fill_only:
        return
    from mailbox.search import thread_search

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    print(
        f"mailbox of {mailbox.messages.count():,} messages; {args.runs} runs each, 50 threads a page; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall time through the selector)"
    )
    for label, query in QUERIES:
        _time(f"{label}: {query}", lambda q=query: thread_search(mailbox=mailbox, query=q), args.runs, backend_pid)
    page = thread_search(mailbox=mailbox, query="commonword")
    for _ in range(2):
        page = thread_search(mailbox=mailbox, query="commonword", older_than=page.older)
    deep = page.older
    _time(
        "common body term, 4th page",
        lambda: thread_search(mailbox=mailbox, query="commonword", older_than=deep),
        args.runs,
        backend_pid,
    )


if __name__ == "__main__":
    main()
