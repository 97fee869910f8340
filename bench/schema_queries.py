"""How the schema's hot queries behave at a million messages.

Fills a separate database (``<name>_bench``, kept between runs) with one mailbox of N messages in
N/5 threads, generated in SQL, then times the queries the inbox makes through the real selectors:
a label's first page, a deep keyset page, unread counts, a Message-ID look-up. Prints p50/p95 and
whether each plan uses an index.

    .venv/bin/python bench/schema_queries.py [--messages 1000000] [--runs 200]
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

FILL_SQL = """
INSERT INTO threads_thread (mailbox_id, subject, normalized_subject, list_id, participants, participant_addresses,
    message_count, unread_count, starred_count, has_attachments, snippet, first_message_at, last_message_at,
    created_at, updated_at)
SELECT %(mailbox)s, 'Thread ' || g, 'thread ' || g, '', '[]', '[]', 5, CASE WHEN g %% 10 = 0 THEN 1 ELSE 0 END, 0,
    false, 'snippet ' || g, now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval, now(), now()
FROM generate_series(1, %(threads)s) AS g;

INSERT INTO delivery_blob (sha256, size, storage_key, created_at)
SELECT encode(sha256(('bench' || g)::bytea), 'hex'), 1000, 'bench/' || g, now()
FROM generate_series(1, %(messages)s) AS g
ON CONFLICT DO NOTHING;

INSERT INTO mailbox_message (mailbox_id, thread_id, thread_reason, blob_id, message_id, in_reply_to, "references",
    subject, normalized_subject, from_address, from_name, list_id, date, received_at, snippet, size,
    has_attachments, is_read, is_starred, is_draft, spam_verdict, source_tag)
SELECT %(mailbox)s, first.id + (g %% %(threads)s), 'reference', b.id, 'bench-' || g || '@example.org', '', '{}',
    'Thread', 'thread', 'sender@example.org', 'Sender', '', now() - (g || ' seconds')::interval, now(), '', 1000,
    false, true, false, false, 'unknown', 'bench'
FROM generate_series(1, %(messages)s) AS g
CROSS JOIN (SELECT min(id) AS id FROM threads_thread WHERE mailbox_id = %(mailbox)s) AS first
JOIN delivery_blob b ON b.sha256 = encode(sha256(('bench' || g)::bytea), 'hex');

INSERT INTO threads_threadmessageid (mailbox_id, message_id, thread_id, seen)
SELECT mailbox_id, message_id, thread_id, true FROM mailbox_message WHERE mailbox_id = %(mailbox)s;

INSERT INTO mailbox_threadlabel (mailbox_id, label_id, thread_id, message_count, last_message_at, unread_count)
SELECT %(mailbox)s, %(inbox)s, id, message_count, last_message_at, unread_count
FROM threads_thread WHERE mailbox_id = %(mailbox)s;
ANALYZE;
"""


def _use_bench_database(*, fresh: bool) -> None:
    """Switch to the bench database, migrated; kept between runs unless ``fresh``."""
    connection.settings_dict["TEST"]["NAME"] = f"{settings.DATABASES['default']['NAME']}_bench"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=not fresh, serialize=False)


def _fill(messages: int):  # noqa: ANN202 - returns (mailbox, inbox label)
    from mailbox.models import Label, Mailbox
    from mailbox.services import mailbox_create

    mailbox = Mailbox.objects.filter(address="bench@example.org").first()
    if mailbox is None:
        mailbox = mailbox_create(address="bench@example.org", password=None)
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    have = mailbox.messages.count()
    if have < messages:
        started = time.perf_counter()
        print(f"filling {messages:,} messages in {messages // 5:,} threads ...", flush=True)
        with connection.cursor() as cursor:
            cursor.execute(
                FILL_SQL, {"mailbox": mailbox.id, "inbox": inbox.id, "threads": messages // 5, "messages": messages}
            )
        print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)
    return mailbox, inbox


def _time(label: str, call: Callable[[], object], runs: int) -> None:
    call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{label:<40} p50 {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms")


def _plan_uses_index(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = " ".join(row[0] for row in cursor.fetchall())
    return "index" if "Index" in plan else "SEQ SCAN"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the bench database")
    args = parser.parse_args()
    _use_bench_database(fresh=args.fresh)
    from mailbox import selectors
    from mailbox.models import ThreadLabel
    from threads.models import ThreadMessageId

    mailbox, inbox = _fill(args.messages)
    rows = ThreadLabel.objects.filter(mailbox=mailbox, label=inbox).order_by("-last_message_at", "-thread_id")
    deep = rows[args.messages // 5 - 100]
    deep_cursor = selectors.Cursor(deep.last_message_at, deep.thread_id)
    some_id = (
        f"bench-{mailbox.messages.order_by('id').values_list('blob_id', flat=True)[args.messages // 2]}@example.org"
    )
    print(f"mailbox of {mailbox.messages.count():,} messages, {rows.count():,} threads in the Inbox")

    _time(
        "inbox first page (50 threads)",
        lambda: selectors.thread_list_for_label(mailbox=mailbox, label=inbox),
        args.runs,
    )
    _time(
        "inbox deep keyset page",
        lambda: selectors.thread_list_for_label(mailbox=mailbox, label=inbox, older_than=deep_cursor),
        args.runs,
    )
    _time("unread counts per label", lambda: selectors.label_unread_counts(mailbox=mailbox), args.runs)
    lookup = ThreadMessageId.objects.filter(mailbox_id=mailbox.id, message_id=some_id)
    _time("Message-ID look-up", lambda: list(lookup.values_list("thread_id", flat=True)), args.runs)
    page_sql, page_params = rows.query.sql_with_params()
    print(
        "plans:",
        "thread list:",
        _plan_uses_index(page_sql + " LIMIT 51", list(page_params)),
        "| message-id:",
        _plan_uses_index(*lookup.query.sql_with_params()),
    )


if __name__ == "__main__":
    main()
