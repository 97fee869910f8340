"""Run as a separate process by the live-update browser test: a web process of its own that POSTs
Postmark inbound webhooks to its own Django. Each answer means the message is stored and its parse
queued on the broker; a Celery worker process parses and delivers it, and its live event reaches
the browser's web process only through the Redis channel layer.

Usage: python -m tests.e2e.post_inbound_webhook RECIPIENT, then one "SUBJECT<TAB>MESSAGE_ID" line
per webhook on stdin; for each, one JSON line on stdout with the wall-clock time just before the
POST (seconds since the epoch), the answer's status and the CPU seconds this process spent on it.
The process stays warm between webhooks, as a web worker does.
"""

import base64
import json
import os
import sys
import time

import django


def _payload(recipient: str, subject: str, message_id: str) -> str:
    raw = (
        f"From: Carol <carol@example.org>\nTo: {recipient}\nSubject: {subject}\n"
        f"Message-ID: <{message_id}>\nDate: Mon, 02 Nov 2026 10:00:00 +0000\n\nHello from another process.\n"
    )
    return json.dumps(
        {
            "From": "carol@example.org",
            "FromFull": {"Email": "carol@example.org", "Name": "Carol", "MailboxHash": ""},
            "To": recipient,
            "ToFull": [{"Email": recipient, "Name": "", "MailboxHash": ""}],
            "OriginalRecipient": recipient,
            "Subject": subject,
            "MessageID": message_id,
            "TextBody": "Hello from another process.",
            "Headers": [],
            "Attachments": [],
            "RawEmail": raw,
        }
    )


def main(recipient: str) -> None:
    django.setup()
    from django.test import Client

    # The basic-auth pair an ESP would send: the one this process's settings expect.
    client = Client(
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(os.environ["ANYMAIL_WEBHOOK_SECRET"].encode()).decode()
    )
    for line in sys.stdin:
        subject, message_id = line.rstrip("\n").split("\t")
        body = _payload(recipient, subject, message_id)
        posted_at, cpu_before = time.time(), time.process_time()
        response = client.post("/anymail/postmark/inbound/", body, content_type="application/json")
        cpu = time.process_time() - cpu_before
        print(json.dumps({"posted_at": posted_at, "status": response.status_code, "cpu": cpu}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
