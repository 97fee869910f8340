"""Thread resolution and ingestion as one mailbox grows to a million messages.

A mailbox of that size cannot be ingested one message at a time here, so it is filled with SQL
(generate_series): threads of five messages with realistic Message-IDs, subjects that repeat across
threads months apart, correspondents, and the Message-ID map (``ThreadMessageId``) and label rows
the resolver and delivery read. At each size (10k, 100k, 1M by default) a few hundred real messages
are then ingested through ``message_import_raw`` (parse, store, resolve, deliver) after a short
untimed warm-up: replies with headers, replies that lost them (joined by subject and participants),
and new conversations.
Prints the resolution time (``thread_place_message``) p50/p95, wall clock and CPU time of this
process (``time.process_time``: the Python side of resolution, which other processes' load on a
shared machine barely changes), the queries per message, the ingestion rate, the load average, and
whether the resolver's queries use an index.

Uses its own database (``<name>_threading_scale``, kept between runs; ``--fresh`` rebuilds it).
Participant rows of the filled messages are not generated: the resolver never reads them.

    .venv/bin/python bench/threading_scale.py [--sizes 10000,100000,1000000] [--messages 300] [--rounds 1]
"""

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Max  # noqa: E402

MESSAGES_PER_THREAD = 5
WARM_UP = 30  # messages ingested untimed first at each size: caches warm, as in a running system
SUBJECT_CYCLE = 50_000  # subjects repeat every 50,000 threads (about 170 days apart)
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=800)
DOMAIN = "mail.example.org"


def message_id(g: int) -> str:
    return f"{hashlib.md5(str(g).encode()).hexdigest()}@{DOMAIN}"  # an id, not security


def _defaults_for(model, given: set[str]) -> tuple[list[str], list]:  # noqa: ANN001
    """Columns of ``model`` the fill does not set, with their Django defaults (the schema may grow)."""
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.column in given or field.primary_key:
            continue
        columns.append(field.column)
        values.append(field.get_db_prep_save(field.get_default(), connection))
    return columns, values


def _insert_select(model, expressions: dict[str, str], source: str, params: dict) -> None:  # noqa: ANN001
    """INSERT INTO model (…) SELECT <expressions, then defaults> <source>, with %(name)s parameters."""
    extra_columns, extra_values = _defaults_for(model, set(expressions))
    for n, value in enumerate(extra_values):
        params[f"default_{n}"] = value
    columns = [*expressions, *extra_columns]
    selects = [*expressions.values(), *(f"%(default_{n})s" for n in range(len(extra_values)))]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    sql = f"INSERT INTO {model._meta.db_table} ({quoted}) SELECT {', '.join(selects)} {source}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _fill(mailbox, inbox, *, threads_from: int, threads_to: int) -> None:  # noqa: ANN001
    """Add threads ``threads_from+1 .. threads_to`` (and their five messages each) to the mailbox."""
    from delivery.models import Blob
    from mailbox.models import Message, MessageLabel, ThreadLabel
    from threads.models import Thread, ThreadMessageId

    p = {"mailbox": mailbox.id, "inbox": inbox.id, "t_lo": threads_from + 1, "t_hi": threads_to, "start": START}
    p.update(g_lo=threads_from * MESSAGES_PER_THREAD + 1, g_hi=threads_to * MESSAGES_PER_THREAD, cycle=SUBJECT_CYCLE)
    p["before"] = Thread.objects.aggregate(m=Max("id"))["m"] or 0
    person = "'person' || (t %% 5000) || '@example.org'"
    _insert_select(
        Thread,
        {
            "mailbox_id": "%(mailbox)s",
            "subject": "'Project ' || (t %% %(cycle)s) || ' status'",
            "normalized_subject": "'project ' || (t %% %(cycle)s) || ' status'",
            "participants": f"jsonb_build_array(jsonb_build_object('name', 'Person', 'address', {person}))",
            "participant_addresses": f"jsonb_build_array({person})",
            "correspondents": f"jsonb_build_array({person}, 'team' || (t %% 300) || '@example.org')",
            "message_count": "5",
            "snippet": "'Status of the project'",
            "first_message_at": "%(start)s + ((5 * t - 4) || ' minutes')::interval",
            "last_message_at": "%(start)s + ((5 * t) || ' minutes')::interval",
            "created_at": "now()",
            "updated_at": "now()",
        },
        "FROM generate_series(%(t_lo)s::bigint, %(t_hi)s::bigint) AS t ORDER BY t",
        p,
    )
    sha = "encode(sha256(('scale' || g)::bytea), 'hex')"
    _insert_select(
        Blob,
        {"sha256": sha, "size": "1000", "storage_key": "'scale/' || g", "created_at": "now()"},
        "FROM generate_series(%(g_lo)s::bigint, %(g_hi)s::bigint) AS g ON CONFLICT DO NOTHING",
        p,
    )
    t_of_g = "((g + 4) / 5)"
    _insert_select(
        Message,
        {
            "mailbox_id": "%(mailbox)s",
            "thread_id": f"first.id + {t_of_g} - %(t_lo)s",
            "thread_reason": "'reference'",
            "blob_id": "b.id",
            "message_id": f"md5(g::text) || '@{DOMAIN}'",
            "subject": f"'Re: Project ' || ({t_of_g} %% %(cycle)s) || ' status'",
            "normalized_subject": f"'project ' || ({t_of_g} %% %(cycle)s) || ' status'",
            "from_address": f"'person' || ({t_of_g} %% 5000) || '@example.org'",
            "date": "%(start)s + (g || ' minutes')::interval",
            "received_at": "now()",
            "size": "1000",
            "is_read": "true",
            "source_tag": "'bench'",
        },
        "FROM generate_series(%(g_lo)s::bigint, %(g_hi)s::bigint) AS g CROSS JOIN "
        "(SELECT min(id) AS id FROM threads_thread WHERE mailbox_id = %(mailbox)s AND id > %(before)s) AS first "
        f"JOIN delivery_blob b ON b.sha256 = {sha}",
        p,
    )
    recent = "FROM mailbox_message WHERE mailbox_id = %(mailbox)s AND thread_id > %(before)s"
    _insert_select(
        ThreadMessageId,
        {"mailbox_id": "mailbox_id", "message_id": "message_id", "thread_id": "thread_id", "seen": "true"},
        recent,
        p,
    )
    _insert_select(MessageLabel, {"mailbox_id": "mailbox_id", "message_id": "id", "label_id": "%(inbox)s"}, recent, p)
    _insert_select(
        ThreadLabel,
        {
            "mailbox_id": "mailbox_id",
            "label_id": "%(inbox)s",
            "thread_id": "id",
            "message_count": "message_count",
            "unread_count": "0",
            "last_message_at": "last_message_at",
        },
        "FROM threads_thread WHERE mailbox_id = %(mailbox)s AND id > %(before)s",
        p,
    )
    with connection.cursor() as cursor:
        # As autovacuum would after such a load (planner statistics, visibility map for index-only
        # scans), so it does not run mid-measurement; then write the load out, or the checkpoint it
        # triggers runs during the measurement and its writes are timed as ingestion.
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")


def _raw(mid: str, subject: str, sender: str, to: str, date: datetime, parents: list[str]) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"], msg["Date"] = f"<{mid}>", format_datetime(date)
    if parents:
        msg["In-Reply-To"] = f"<{parents[-1]}>"
        msg["References"] = " ".join(f"<{p}>" for p in parents)
    msg.set_content("Thanks, noted. " * 20)
    return bytes(msg)


def _workload(rng: random.Random, *, threads: int, count: int, owner: str, round_: str) -> list[tuple[str, bytes]]:
    """Half replies with headers, a fifth replies without, the rest new conversations."""
    mail = []
    for n in range(count):
        t = rng.randint(1, threads)
        subject = f"Re: Project {t % SUBJECT_CYCLE} status"
        after_thread = START + timedelta(minutes=5 * t, days=1)
        kind = rng.choices(("reply", "headerless", "new"), weights=(50, 20, 30))[0]
        mid = f"scale-{round_}-{n}@client.example.net"
        if kind == "reply":
            g = rng.randint(5 * t - 4, 5 * t)
            parents = [message_id(5 * t - 4), message_id(g)] if g != 5 * t - 4 else [message_id(g)]
            raw = _raw(mid, subject, f"person{t % 5000}@example.org", owner, after_thread, parents)
        elif kind == "headerless":
            raw = _raw(mid, subject, f"team{t % 300}@example.org", owner, after_thread, [])
        else:
            raw = _raw(mid, f"New topic {round_}-{n}", "someone@example.net", owner, datetime.now(UTC), [])
        mail.append((kind, raw))
    return mail


def _measure(mailbox, *, threads: int, count: int, seed: int) -> dict:  # noqa: ANN001
    from mailbox.services import conversations, message_import_raw

    timings: list[float] = []
    cpu: list[float] = []
    queries = {"all": 0, "resolution": 0}
    resolving = [False]
    real = conversations.thread_place_message

    def timed(**kwargs):  # noqa: ANN202
        resolving[0] = True
        started, started_cpu = time.perf_counter(), time.process_time()
        placement = real(**kwargs)
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        resolving[0] = False
        return placement

    def counted(execute, sql, params, many, context):  # noqa: ANN001, ANN202
        is_query = not sql.startswith(("SAVEPOINT", "RELEASE"))
        queries["all"] += is_query
        queries["resolution"] += is_query and resolving[0]
        return execute(sql, params, many, context)

    round_ = f"{threads}-{time.time_ns()}"  # fresh Message-IDs on every run
    mail = _workload(random.Random(seed), threads=threads, count=count, owner=mailbox.address, round_=round_)
    for _, raw in _workload(
        random.Random(-seed), threads=threads, count=WARM_UP, owner=mailbox.address, round_=f"warm-{round_}"
    ):
        message_import_raw(mailbox=mailbox, raw=raw, source_tag="bench-warm-up")
    conversations.thread_place_message = timed
    reasons: dict[str, int] = {}
    try:
        with connection.execute_wrapper(counted):
            started = time.perf_counter()
            for _, raw in mail:
                message = message_import_raw(mailbox=mailbox, raw=raw, source_tag="bench").message
                reasons[message.thread_reason] = reasons.get(message.thread_reason, 0) + 1
            elapsed = time.perf_counter() - started
    finally:
        conversations.thread_place_message = real
    timings.sort()
    cpu.sort()
    return {
        "p50": statistics.median(timings),
        "p95": timings[int(len(timings) * 0.95) - 1],
        "cpu_p50": statistics.median(cpu),
        "cpu_p95": cpu[int(len(cpu) * 0.95) - 1],
        "rate": count / elapsed,
        "queries": queries["all"] / count,
        "resolution_queries": queries["resolution"] / count,
        "reasons": reasons,
    }


def _plans(mailbox, threads: int) -> str:  # noqa: ANN001
    """Whether the resolver's look-ups (Message-ID map, subject candidates) use an index."""
    from threads.models import Thread, ThreadMessageId

    ids = ThreadMessageId.objects.filter(mailbox_id=mailbox.id, message_id__in=[message_id(7), message_id(9)])
    recent = Thread.objects.filter(
        mailbox_id=mailbox.id, normalized_subject="project 7 status", last_message_at__gte=START
    ).order_by("last_message_at")
    subject, fragments = recent[:10], recent.filter(is_fragment=True, is_manual=False)[:10]
    verdicts = []
    for query in (ids, subject, fragments):
        sql, params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + sql, params)
            plan = " ".join(row[0] for row in cursor.fetchall())
        verdicts.append("index" if "Index" in plan and "Seq Scan" not in plan else "SEQ SCAN")
    return f"message-id map: {verdicts[0]}, subject candidates: {verdicts[1]}, fragments: {verdicts[2]}"


def _use_bench_database(*, fresh: bool) -> None:
    connection.settings_dict["TEST"]["NAME"] = f"{settings.DATABASES['default']['NAME']}_threading_scale"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=not fresh, serialize=False)
    settings.STORAGES = {
        **settings.STORAGES,
        "mail": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tempfile.mkdtemp(prefix="threading-scale-"), "allow_overwrite": True},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000", help="mailbox sizes to measure at, ascending")
    parser.add_argument("--messages", type=int, default=300, help="real messages ingested at each size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rounds", type=int, default=1, help="measurements at each size (the machine's other load varies)"
    )
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the bench database")
    args = parser.parse_args()
    _use_bench_database(fresh=args.fresh)
    from mailbox.models import Label, Mailbox
    from mailbox.services import mailbox_create

    mailbox = Mailbox.objects.filter(address="scale@example.org").first() or mailbox_create(
        address="scale@example.org", password=None
    )
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    print("            resolution (thread_place_message)                    ingestion (message_import_raw)")
    print(
        f"{'messages':>10} {'p50':>9} {'p95':>8} {'cpu p50':>9} {'cpu p95':>8} {'queries':>8} {'rate':>10} "
        f"{'queries':>8} {'load 1m':>7}  plans; joined by"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        filled = mailbox.messages.filter(source_tag="bench").count() // MESSAGES_PER_THREAD
        if filled < size // MESSAGES_PER_THREAD:
            started = time.perf_counter()
            _fill(mailbox, inbox, threads_from=filled, threads_to=size // MESSAGES_PER_THREAD)
            print(f"(filled to {size:,} messages in {time.perf_counter() - started:.0f} s)", flush=True)
        for round_ in range(args.rounds):
            seed = args.seed + size + round_
            result = _measure(mailbox, threads=size // MESSAGES_PER_THREAD, count=args.messages, seed=seed)
            total = mailbox.messages.count()
            plans = _plans(mailbox, size // MESSAGES_PER_THREAD)
            print(
                f"{total:>10,} {result['p50']:>9.2f} ms {result['p95']:>5.2f} ms {result['cpu_p50']:>6.2f} ms "
                f"{result['cpu_p95']:>5.2f} ms {result['resolution_queries']:>8.1f} {result['rate']:>8.0f}/s "
                f"{result['queries']:>8.1f} {os.getloadavg()[0]:>7.2f}  {plans}; {result['reasons']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
