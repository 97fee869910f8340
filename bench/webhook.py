"""How long an ESP inbound webhook keeps the ESP waiting: the server's time for one POST.

Posts a few hundred realistic messages (~25 KB: text, HTML and a PDF attachment, each with its own
Message-ID) to /anymail/... through Django's full handler and middleware, per ESP, and prints
p50/p95/p99. In each request: authentication (basic auth; Mailgun's HMAC; the SNS signature, its
certificate served from 127.0.0.1 and cached), Anymail's own parse of the POST, the blob written to
filesystem storage, the receipt committed to PostgreSQL, the parse task queued to Celery's
in-memory broker, which no worker drains (parsing is not part of the request). Logs are formatted
as in production and discarded. Target: p50 under 30 ms.

Uses a separate database (``<name>_bench_webhook``, kept between runs unless ``--fresh``).

    .venv/bin/python bench/webhook.py [--posts 300] [--fresh]
"""

import argparse
import base64
import hashlib
import hmac
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
os.environ.setdefault("LOG_FORMAT", "json")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from mailsite.celery import app  # noqa: E402
from tests.sns import LOCAL_CERT_URL_PATTERN, TOPIC_ARN, sns_post_kwargs, sns_signer  # noqa: E402

SECRET = "bench:webhook-secret"
MAILGUN_KEY = "key-bench"
RECIPIENT = "bench-webhook@example.org"


def _configure(mail_dir: str) -> None:
    """Production-like request handling, filesystem mail storage, and tasks queued, not run."""
    override_settings(
        DEBUG=False,  # no query log, as in production
        ALLOWED_HOSTS=["testserver"],
        SECURE_SSL_REDIRECT=False,
        ANYMAIL={"WEBHOOK_SECRET": [SECRET], "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY},
        MAILSITE_SNS_CERT_URL_PATTERN=LOCAL_CERT_URL_PATTERN,
        MAILSITE_SNS_TOPIC_ARNS=[TOPIC_ARN],
        STORAGES={
            **settings.STORAGES,
            "mail": {
                "BACKEND": "delivery.storage.DurableFileSystemStorage",
                "OPTIONS": {"location": mail_dir, "allow_overwrite": True},
            },
        },
    ).enable()
    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"
    for handler in logging.getLogger().handlers:
        handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the life of the process


def _use_bench_database(*, fresh: bool) -> None:
    connection.settings_dict["TEST"]["NAME"] = f"{settings.DATABASES['default']['NAME']}_bench_webhook"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=not fresh, serialize=False)


def _mailbox() -> None:
    from mailbox.models import Mailbox
    from mailbox.services import mailbox_create

    if not Mailbox.objects.filter(address=RECIPIENT).exists():
        mailbox_create(address=RECIPIENT, password=None)


def raw_message(index: int) -> bytes:
    """A typical business message: text and HTML alternatives and a 12 KB attachment."""
    message = EmailMessage()
    message["Return-Path"] = "<carol@example.com>"
    message["Received"] = "from mail.example.com (mail.example.com [203.0.113.5]) by mx.example.org"
    message["DKIM-Signature"] = "v=1; a=rsa-sha256; d=example.com; s=s1; bh=" + "A" * 44 + "; b=" + "B" * 340
    message["From"] = "Carol Example <carol@example.com>"
    message["To"] = f"Bench <{RECIPIENT}>"
    message["Subject"] = f"Quarterly report, part {index}"
    message["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    message["Message-ID"] = f"<bench-{uuid.uuid4().hex}@example.com>"
    text = ("Hello,\n\nplease find the quarterly figures attached. " * 40 + "\n") * 3
    message.set_content(text)
    message.add_alternative(f"<html><body><p>{text.replace(chr(10), '<br>')}</p></body></html>", subtype="html")
    message.add_attachment(os.urandom(12_000), maintype="application", subtype="pdf", filename="report.pdf")
    return bytes(message)


def mailgun(raw: bytes) -> tuple[str, dict]:
    token, timestamp = uuid.uuid4().hex * 2, str(int(time.time()))
    signature = hmac.new(MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    data = {
        "recipient": RECIPIENT,
        "sender": "carol@example.com",
        "body-mime": raw.decode(),
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
    }
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    return "/anymail/mailgun/inbound_mime/", {"data": data, "HTTP_AUTHORIZATION": auth}


def postmark(raw: bytes) -> tuple[str, dict]:
    payload = {
        "MessageID": str(uuid.uuid4()),
        "OriginalRecipient": RECIPIENT,
        "Headers": [{"Name": "Return-Path", "Value": "<carol@example.com>"}],
        "RawEmail": raw.decode(),
    }
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    return "/anymail/postmark/inbound/", {
        "data": json.dumps(payload),
        "content_type": "application/json",
        "HTTP_AUTHORIZATION": auth,
    }


def amazon_ses(raw: bytes) -> tuple[str, dict]:
    event = {
        "notificationType": "Received",
        "mail": {"source": "carol@example.com", "messageId": uuid.uuid4().hex, "destination": [RECIPIENT]},
        "receipt": {
            "recipients": [RECIPIENT],
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "action": {"type": "SNS", "topicArn": "arn:aws:sns:us-east-1:111111111111:SES", "encoding": "BASE64"},
        },
        "content": base64.b64encode(raw).decode(),
    }
    return "/anymail/amazon_ses/inbound/", sns_post_kwargs(sns_signer().notification(event), auth=SECRET)


def measure(label: str, build: Callable[[bytes], tuple[str, dict]], posts: int) -> None:
    client = Client()
    requests = [build(raw_message(i)) for i in range(posts + 20)]
    samples, cpu_samples = [], []
    for index, (url, kwargs) in enumerate(requests):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.post(url, **kwargs)
        elapsed = (time.perf_counter() - started) * 1000
        cpu = (time.process_time() - cpu_started) * 1000  # this process only: not PostgreSQL's
        if response.status_code != 200:
            raise SystemExit(f"{label}: {url} answered {response.status_code}: {response.content[:500]!r}")
        if index >= 20:  # the first ones warm caches and connections
            samples.append(elapsed)
            cpu_samples.append(cpu)
    samples.sort()
    p50, p95, p99 = (samples[min(len(samples) - 1, int(len(samples) * q))] for q in (0.50, 0.95, 0.99))
    size = len(raw_message(0))
    print(
        f"{label:<25} {posts} POSTs of ~{size // 1024} KB   p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   "
        f"p99 {p99:6.2f} ms   mean {statistics.fmean(samples):6.2f} ms   "
        f"CPU p50 {statistics.median(cpu_samples):5.2f} ms   {'OK' if p50 < 30 else 'OVER'} (p50 < 30 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the bench database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailsite-bench-mail-") as mail_dir:
        _configure(mail_dir)
        _use_bench_database(fresh=args.fresh)
        _mailbox()
        from delivery.models import InboundReceipt

        before = InboundReceipt.objects.count()
        for label, build in (("mailgun (body-mime)", mailgun), ("postmark (RawEmail)", postmark)):
            measure(label, build, args.posts)
        measure("amazon_ses (SNS, signed)", amazon_ses, args.posts)
        stored = InboundReceipt.objects.count() - before
        waiting = InboundReceipt.objects.filter(status=InboundReceipt.Status.RECEIVED).count()
        print(f"receipts stored: {stored}, of which still waiting for a worker: {waiting} (parse queued, not run)")


if __name__ == "__main__":
    main()
