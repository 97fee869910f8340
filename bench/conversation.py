"""Conversation view server time for a 100-message thread (target: under 100 ms).

Runs in a separate database (``<name>_conversation_bench``, rebuilt each run) with blobs under a
temporary folder. Builds one mailbox with a 100-message thread (HTML bodies, an attachment every
tenth message) plus some other mail, then times, through Django's test client (the whole request:
middleware, session, queries, template):

- the conversation page ``/t/<id>/`` (bodies load lazily, so this is metadata only), read thread;
- the body document ``/m/<id>/body/`` of one message (sanitising included);
and prints p50/p95/max and the query count of each.

    .venv/bin/python bench/conversation.py [--messages 100] [--runs 200]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from mailsite.startup import app_loaded_freeze  # noqa: E402

HTML = (
    "<table width=600 style='border-collapse:collapse'><tr><td style='padding:8px;color:#333'>"
    "<p>Hello team,</p><p>Here are the <b>figures</b> for message {n}. See https://example.org/q{n}.</p>"
    "<img src='https://images.example.net/banner.png'></td></tr></table>"
    "<div class='gmail_quote'><div>On Mon, Bob wrote:</div><blockquote>{quote}</blockquote></div>"
)


def _setup() -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SECURE_SSL_REDIRECT = False
    settings.DEBUG = False
    folder = tempfile.mkdtemp(prefix="mailsite-conversation-bench-")
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "mail": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": folder}},
    }
    connection.settings_dict["TEST"]["NAME"] = f"{settings.DATABASES['default']['NAME']}_conversation_bench"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)


def _build(count: int) -> tuple:
    from mailbox.services import mailbox_create, message_import_raw
    from tests.mailbox.conversation_mail import PNG, conversation_message

    mailbox = mailbox_create(address="bench@example.test", password="correct horse battery staple")
    messages = []
    for n in range(count):
        raw = conversation_message(
            n,
            to=mailbox.address,
            thread="bench",
            sender=f"Person {n % 7} <person{n % 7}@example.org>",
            html=HTML.format(n=n, quote="earlier text " * 40),
            attachments=(("chart.png", "image/png", PNG),) if n % 10 == 0 else (),
        )
        messages.append(message_import_raw(mailbox=mailbox, raw=raw, source_tag="bench").message)
    for n in range(200):
        raw = conversation_message(0, to=mailbox.address, thread=f"other{n}")
        message_import_raw(mailbox=mailbox, raw=raw, source_tag="bench")
    return mailbox, messages


def _time(client: Client, url: str, runs: int) -> tuple[list[float], list[float], int]:
    client.get(url)  # warm: first visit marks read, templates compile
    captured: list[str] = []

    def count(execute, sql, params, many, context):  # noqa: ANN001, ANN202 - Django's wrapper signature
        captured.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        assert client.get(url).status_code == 200
    timings, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert response.status_code == 200
    return timings, cpu, len(captured)


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"p50 {statistics.median(ordered):7.2f} ms  p95 {p95:7.2f} ms  max {ordered[-1]:7.2f} ms"


def _report(label: str, timings: list[float], cpu: list[float], queries: int) -> None:
    """Wall time is what a user waits; the CPU time of this process (Django's share, without the
    database's) shows what the code costs when the machine's 2 cores are shared."""
    print(f"{label:<38} wall {_percentiles(timings)}   queries {queries}")
    print(f"{'':<38} cpu  {_percentiles(cpu)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    _setup()
    mailbox, messages = _build(args.messages)
    client = Client()
    client.force_login(mailbox.user)
    # What the web processes do once started (mailsite.wsgi, mailsite.asgi): without it, full
    # garbage collections over everything loaded make one request in ten several times slower.
    app_loaded_freeze()
    print(f"thread of {len(messages)} messages; {args.runs} requests each")
    _report(f"conversation page ({len(messages)} messages)", *_time(client, f"/t/{messages[0].thread_id}/", args.runs))
    _report("body document (one HTML message)", *_time(client, f"/m/{messages[-1].id}/body/", args.runs))
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (2 cores)")
    connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
