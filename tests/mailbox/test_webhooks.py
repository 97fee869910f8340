"""ESP inbound webhooks end to end: a POST in each ESP's real shape to the real /anymail/ URL,
through Anymail's view and our receiver, to a stored blob, a receipt and the message in the
recipients' mailboxes.

Payload shapes follow Anymail's documentation and test suite and the ESPs' published examples.
Amazon SNS messages are signed with a test key whose certificate a local server publishes; the
SES S3 action reads from moto's standalone S3 server; PostgreSQL is the real one.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import OperationalError, connection, connections
from django.test import Client

from delivery.models import Blob, InboundReceipt
from delivery.selectors import blob_read
from delivery.services import inbound_receipt_create
from mailbox.models import Message, MessageLabel
from mailbox.tasks import receipt_process_task, receipts_sweep_task
from mailsite.celery import app, queue_depth
from mailsite.models import DomainEvent
from mailsite.realtime import mailbox_group_name
from tests.celery_workers import wait_for
from tests.conftest import requires_redis
from tests.mail import logged_events

# The private Redis and real worker of the fault tests, reused as fixtures.
from tests.s3 import CREDENTIALS, REGION, moto_server, s3_client
from tests.sns import LOCAL_CERT_URL_PATTERN, TOPIC_ARN, CertificateServer, sns_post_kwargs, sns_signer

SECRET = "mailsite:current-webhook-secret"
PREVIOUS_SECRET = "mailsite:previous-webhook-secret"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
BREVO_API_KEY = "xkeysib-test"

# A message as it reaches the ESP's MX, CRLF line endings, one part in 8-bit Latin-1: bytes that
# are not UTF-8, so only a path that keeps the original bytes stores it unchanged.
RAW = (
    b"Return-Path: <carol@example.org>\r\n"
    b"Received: from mail.example.org (mail.example.org [203.0.113.5]) by mx.example.test; "
    b"Mon, 02 Nov 2026 10:00:01 +0000\r\n"
    b"From: Carol =?iso-8859-1?q?Fran=E7ois?= <carol@example.org>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Cc: bob@example.test\r\n"
    b"Subject: Quarterly numbers\r\n"
    b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <q3-numbers@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Caf\xe9 cr\xe8me: the numbers are attached.\r\n"
    b"--b1\r\n"
    b'Content-Type: text/csv; name="q3.csv"\r\n'
    b'Content-Disposition: attachment; filename="q3.csv"\r\n'
    b"\r\n"
    b"quarter,revenue\r\nQ3,1200\r\n"
    b"--b1--\r\n"
)
# The same message in UTF-8, for the ESPs whose JSON payloads carry text only.
RAW_UTF8 = RAW.replace(b"iso-8859-1", b"utf-8").replace(b"\xe9", "é".encode()).replace(b"\xe8", "è".encode())
RECIPIENTS = ["alice@example.test", "bob@example.test"]


@pytest.fixture(autouse=True)
def _webhooks_configured(settings):
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": [SECRET, PREVIOUS_SECRET],
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "BREVO_API_KEY": BREVO_API_KEY,
        "AMAZON_SES_SESSION_PARAMS": {**CREDENTIALS, "region_name": REGION},
    }
    settings.MAILSITE_SNS_CERT_URL_PATTERN = LOCAL_CERT_URL_PATTERN
    settings.MAILSITE_SNS_TOPIC_ARNS = [TOPIC_ARN]
    # Counted in-process whatever REDIS_URL says.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _basic(auth: str) -> str:
    return "Basic " + base64.b64encode(auth.encode()).decode()


def _multipart(fields: dict[str, bytes | str]) -> tuple[bytes, str]:
    """A multipart/form-data body carrying each field's bytes exactly, as the ESP sends it."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in fields.items():
        data = value.encode() if isinstance(value, str) else value
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@dataclass
class Webhook:
    """One ESP POST and what it must leave behind."""

    url: str
    post: dict
    esp: str
    event_id: str
    stored: bytes | None  # the exact bytes kept; None where Anymail rebuilds the message
    envelope_sender: str
    envelope_recipients: list[str]
    verdicts: dict = field(default_factory=dict)

    def send(self, client: Client | None = None, **extra):
        return (client or Client(raise_request_exception=False)).post(self.url, **{**self.post, **extra})


# --- Each ESP's real payload shape ------------------------------------------------------------


def _ses_event(action: dict, *, message_id: str, spam: str = "PASS") -> dict:
    """An SES receipt notification (notificationType "Received") as SES publishes it to SNS."""
    return {
        "notificationType": "Received",
        "mail": {
            "timestamp": "2026-11-02T10:00:01.636Z",
            "source": "carol@example.org",
            "messageId": message_id,
            "destination": RECIPIENTS,
            "headersTruncated": False,
            "headers": [{"name": "From", "value": "Carol <carol@example.org>"}],
            "commonHeaders": {"from": ["Carol <carol@example.org>"], "subject": "Quarterly numbers"},
        },
        "receipt": {
            "timestamp": "2026-11-02T10:00:01.636Z",
            "processingTimeMillis": 357,
            "recipients": RECIPIENTS,
            "spamVerdict": {"status": spam},
            "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"},
            "dkimVerdict": {"status": "GRAY"},
            "dmarcVerdict": {"status": "PASS"},
            "dmarcPolicy": "none",
            "action": action,
        },
    }


def ses_sns(raw: bytes = RAW, *, encoding: str = "BASE64", spam: str = "PASS", **sign_options) -> Webhook:
    """SES receipt rule with an SNS action: the message travels inside the notification."""
    message_id = "o3vrnil0e2ic28trm7dfhrc2v0cnbeccl4nbp0g1"
    action = {"type": "SNS", "topicArn": "arn:aws:sns:us-east-1:111111111111:SES_Inbound", "encoding": encoding}
    content = base64.b64encode(raw).decode() if encoding == "BASE64" else raw.decode()
    event = {**_ses_event(action, message_id=message_id, spam=spam), "content": content}
    notification = sns_signer().notification(event, **sign_options)
    verdicts = {"spam": spam == "FAIL", "virus": False, "spf": "pass", "dkim": "gray", "dmarc": "pass"}
    return Webhook(
        "/anymail/amazon_ses/inbound/",
        sns_post_kwargs(notification, auth=SECRET),
        "amazon_ses",
        message_id,
        raw,
        "carol@example.org",
        RECIPIENTS,
        verdicts,
    )


def ses_s3(bucket: str, key: str, raw: bytes) -> Webhook:
    """SES receipt rule with an S3 action: SNS only says where the object is."""
    message_id = key.rsplit("/", 1)[1]
    action = {
        "type": "S3",
        "topicArn": "arn:aws:sns:us-east-1:111111111111:SES_Inbound",
        "bucketName": bucket,
        "objectKeyPrefix": "inbound",
        "objectKey": key,
    }
    notification = sns_signer().notification(_ses_event(action, message_id=message_id))
    verdicts = {"spam": False, "virus": False, "spf": "pass", "dkim": "gray", "dmarc": "pass"}
    return Webhook(
        "/anymail/amazon_ses/inbound/",
        sns_post_kwargs(notification, auth=SECRET),
        "amazon_ses",
        message_id,
        raw,
        "carol@example.org",
        RECIPIENTS,
        verdicts,
    )


def mailgun_mime(raw: bytes = RAW, *, signing_key: str = MAILGUN_KEY, auth: str = SECRET) -> Webhook:
    """A Mailgun route forwarding to .../inbound_mime/: the raw message in ``body-mime``."""
    token, timestamp = "06c96bafc3f42a66b9edd546347a2fe18dc23461fe80dc52f0", "1793613600"
    signature = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    body, content_type = _multipart(
        {
            "recipient": "alice@example.test",
            "sender": "carol@example.org",
            "from": "Carol <carol@example.org>",
            "subject": "Quarterly numbers",
            "body-mime": raw,
            "stripped-text": "the numbers are attached.",
            "timestamp": timestamp,
            "token": token,
            "signature": signature,
        }
    )
    post = {"data": body, "content_type": content_type, "HTTP_AUTHORIZATION": _basic(auth)}
    return Webhook(
        "/anymail/mailgun/inbound_mime/", post, "mailgun", token, raw, "carol@example.org", ["alice@example.test"]
    )


# Postmark's RawEmail: its spam-check headers on top, \n line endings.
POSTMARK_RAW = (
    b"X-Spam-Checker-Version: SpamAssassin 3.4.0 (2014-02-07) on p-pm-smtp-inbound01b-aws-useast2b\r\n"
    b"X-Spam-Status: No\r\n"
    b"X-Spam-Score: -0.1\r\n"
    b"X-Spam-Tests: DKIM_SIGNED,DKIM_VALID,SPF_PASS\r\n" + RAW_UTF8
).replace(b"\r\n", b"\n")


def postmark(raw: bytes = POSTMARK_RAW, *, auth: str = SECRET) -> Webhook:
    """Postmark inbound with "Include raw email content in JSON payload" (RawEmail uses \\n)."""
    message_id = "22c74902-a0c1-4511-804f2-341342852c90"
    payload = {
        "FromName": "Carol François",
        "MessageStream": "inbound",
        "From": "carol@example.org",
        "FromFull": {"Email": "carol@example.org", "Name": "Carol François", "MailboxHash": ""},
        "To": "Alice <alice@example.test>",
        "ToFull": [{"Email": "alice@example.test", "Name": "Alice", "MailboxHash": ""}],
        "Cc": "bob@example.test",
        "CcFull": [{"Email": "bob@example.test", "Name": "", "MailboxHash": ""}],
        "OriginalRecipient": "alice@example.test",
        "Subject": "Quarterly numbers",
        "MessageID": message_id,
        "Date": "Mon, 02 Nov 2026 10:00:00 +0000",
        "TextBody": "Café crème: the numbers are attached.",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": "Return-Path", "Value": "<carol@example.org>"},
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "X-Spam-Score", "Value": "-0.1"},
            {"Name": "Message-ID", "Value": "<q3-numbers@example.org>"},
        ],
        "Attachments": [],
        "RawEmail": raw.decode(),
    }
    post = {"data": json.dumps(payload), "content_type": "application/json", "HTTP_AUTHORIZATION": _basic(auth)}
    verdicts = {"spam": False, "spam_score": -0.1}
    return Webhook(
        "/anymail/postmark/inbound/", post, "postmark", message_id, raw, "carol@example.org", RECIPIENTS[:1], verdicts
    )


def sendgrid_raw(raw: bytes = RAW, *, auth: str = SECRET) -> Webhook:
    """SendGrid Inbound Parse with "POST the raw, full MIME message": the message in ``email``."""
    body, content_type = _multipart(
        {
            "email": raw,
            "from": "Carol <carol@example.org>",
            "to": "Alice <alice@example.test>",
            "cc": "bob@example.test",
            "subject": "Quarterly numbers",
            "charsets": '{"to":"UTF-8","cc":"UTF-8","subject":"UTF-8","from":"UTF-8"}',
            "envelope": json.dumps({"to": RECIPIENTS, "from": "carol@example.org"}),
            "sender_ip": "203.0.113.5",
            "dkim": "{@example.org : pass}",
            "SPF": "pass",
            "spam_score": "0.011",
            "spam_report": "Spam detection software ... has NOT identified this incoming email as spam.",
        }
    )
    post = {"data": body, "content_type": content_type, "HTTP_AUTHORIZATION": _basic(auth)}
    event_id = "sha256:" + hashlib.sha256(raw).hexdigest()  # SendGrid gives no event id
    verdicts = {"spam_score": 0.011, "spf": "pass", "dkim": "{@example.org : pass}"}
    return Webhook(
        "/anymail/sendgrid/inbound/", post, "sendgrid", event_id, raw, "carol@example.org", RECIPIENTS, verdicts
    )


def mailjet(*, auth: str = SECRET) -> Webhook:
    """Mailjet's Parse API: headers and parts as JSON, no raw message (Anymail rebuilds it)."""
    payload = {
        "Sender": "carol@example.org",
        "Recipient": "alice@example.test",
        "Date": "20261102T100000",
        "From": "Carol François <carol@example.org>",
        "Subject": "Quarterly numbers",
        "Headers": {
            "Return-Path": ["<carol@example.org>"],
            "Received": ["from mail.example.org by parse.mailjet.com ..."],
            "MIME-Version": ["1.0"],
            "From": "Carol François <carol@example.org>",
            "Date": "Mon, 02 Nov 2026 10:00:00 +0000",
            "Message-ID": "<q3-numbers@example.org>",
            "Subject": "Quarterly numbers",
            "To": "Alice <alice@example.test>",
            "Cc": "bob@example.test",
            "Content-Type": ['multipart/mixed; boundary="b1"'],
        },
        "Parts": [
            {"Headers": {"Content-Type": ['text/plain; charset="UTF-8"']}, "ContentRef": "Text-part"},
            {
                "Headers": {
                    "Content-Type": ['text/csv; name="q3.csv"'],
                    "Content-Disposition": ['attachment; filename="q3.csv"'],
                },
                "ContentRef": "Attachment1",
            },
        ],
        "Text-part": "Café crème: the numbers are attached.",
        "Attachment1": base64.b64encode(b"quarter,revenue\r\nQ3,1200\r\n").decode(),
        "SpamAssassinScore": "0.3",
    }
    post = {"data": json.dumps(payload), "content_type": "application/json", "HTTP_AUTHORIZATION": _basic(auth)}
    return Webhook(
        "/anymail/mailjet/inbound/", post, "mailjet", "", None, "carol@example.org", RECIPIENTS[:1], {"spam_score": 0.3}
    )


def brevo(*, auth: str = SECRET) -> Webhook:
    """Brevo's inbound parsing webhook: parsed items; attachments are fetched from Brevo's API."""
    uuid_ = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    item = {
        "Uuid": [uuid_],
        "MessageId": "<q3-numbers@example.org>",
        "InReplyTo": None,
        "From": {"Name": "Carol François", "Address": "carol@example.org"},
        "To": [{"Name": "Alice", "Address": "alice@example.test"}],
        "Cc": [{"Name": None, "Address": "bob@example.test"}],
        "ReplyTo": None,
        "SentAtDate": "Mon, 02 Nov 2026 10:00:00 +0000",
        "Subject": "Quarterly numbers",
        "Attachments": [
            {
                "Name": "q3.csv",
                "ContentType": "text/csv",
                "ContentLength": 26,
                "ContentID": None,
                "DownloadToken": "download-token-q3",
            }
        ],
        "Headers": {
            "Return-Path": "<carol@example.org>",
            "Delivered-To": "alice@example.test",
            "Received": ["from mail.example.org by inbound.brevo.com ...", "by mail.example.org ..."],
            "MIME-Version": "1.0",
            "From": "Carol François <carol@example.org>",
            "Date": "Mon, 02 Nov 2026 10:00:00 +0000",
            "Message-ID": "<q3-numbers@example.org>",
            "Subject": "Quarterly numbers",
            "To": "Alice <alice@example.test>",
            "Cc": "bob@example.test",
            "Content-Type": "multipart/mixed",
        },
        "SpamScore": 1.2,
        "ExtractedMarkdownMessage": "Café crème: the numbers are attached.",
        "RawHtmlBody": "<p>Café crème: the numbers are attached.</p>",
        "RawTextBody": "Café crème: the numbers are attached.\r\n",
    }
    post = {
        "data": json.dumps({"items": [item]}),
        "content_type": "application/json",
        "HTTP_AUTHORIZATION": _basic(auth),
    }
    return Webhook(
        "/anymail/brevo/inbound/", post, "brevo", uuid_, None, "carol@example.org", RECIPIENTS[:1], {"spam_score": 1.2}
    )


@pytest.fixture
def brevo_api(settings):
    """Brevo's attachment download API, served locally."""
    server = CertificateServer()
    server.route(
        "/v3/inbound/attachments/download-token-q3",
        b"quarter,revenue\r\nQ3,1200\r\n",
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    settings.ANYMAIL = {**settings.ANYMAIL, "BREVO_API_URL": server.base_url + "/v3/"}
    yield server
    server.httpd.shutdown()


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def ses_bucket(settings, s3_endpoint):
    """An SES receipt bucket on the moto server, which Anymail's S3 client is pointed at."""
    bucket = f"ses-inbound-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    settings.ANYMAIL = {**settings.ANYMAIL, "AMAZON_SES_CLIENT_PARAMS": {"endpoint_url": s3_endpoint}}
    settings.MAILSITE_SES_INBOUND_BUCKETS = [bucket]
    return bucket


# --- Counting what reached the mailboxes ----------------------------------------------------------


class LiveEvents:
    """Listens on each mailbox's channel-layer group, as an open inbox tab's socket does."""

    def __init__(self, mailboxes) -> None:
        self.layer = get_channel_layer()
        self.channels = {m.id: f"test-live.{uuid.uuid4().hex}" for m in mailboxes}
        for mailbox_id, channel in self.channels.items():
            async_to_sync(self.layer.group_add)(mailbox_group_name(mailbox_id), channel)

    def received(self) -> dict[int, list[dict]]:
        async def drain(channel: str) -> list[dict]:
            messages = []
            while True:
                try:
                    messages.append(await asyncio.wait_for(self.layer.receive(channel), 0.1))
                except TimeoutError:
                    return messages

        return {mailbox_id: async_to_sync(drain)(channel) for mailbox_id, channel in self.channels.items()}


def _assert_delivered_once(mailboxes, live: LiveEvents, *, folder: str = "Inbox") -> InboundReceipt:
    receipt = InboundReceipt.objects.get()
    assert receipt.status == InboundReceipt.Status.PARSED, receipt.last_error
    assert Blob.objects.count() == 2  # the raw message and its one attachment, each stored once
    for mailbox in mailboxes:
        message = Message.objects.get(mailbox=mailbox)
        assert message.subject == "Quarterly numbers"
        assert message.receipt_id == receipt.id
        labels = set(MessageLabel.objects.filter(message=message).values_list("label__name", flat=True))
        assert labels == {folder}
        assert message.thread.message_count == 1
        assert DomainEvent.objects.filter(event_type="message.received", mailbox_id=mailbox.id).count() == 1
    events = live.received()
    for mailbox in mailboxes:
        assert [e["payload"]["type"] for e in events[mailbox.id]] == ["thread.updated"], events
    return receipt


def _nothing_stored(mail_dir: Path) -> bool:
    files = [p for p in mail_dir.rglob("*") if p.is_file()] if mail_dir.exists() else []
    return not InboundReceipt.objects.exists() and not Blob.objects.exists() and not files


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    return tmp_path / "mail"  # where conftest puts each test's mail storage


# --- Each ESP, end to end ---------------------------------------------------------------------------

ESP_WEBHOOKS = {
    "amazon_ses-sns-base64": ses_sns,
    "amazon_ses-sns-signature-v2": lambda: ses_sns(version="2"),
    "mailgun-mime": mailgun_mime,
    "postmark-raw": postmark,
    "sendgrid-raw": sendgrid_raw,
    "mailjet": mailjet,
    "brevo": brevo,
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("brevo_api")
@pytest.mark.parametrize("build", ESP_WEBHOOKS.values(), ids=ESP_WEBHOOKS.keys())
def test_each_esp_stores_its_message_and_delivers_it(build, mailbox, other_mailbox):
    webhook = build()
    local = [m for m in (mailbox, other_mailbox) if m.address in webhook.envelope_recipients]
    live = LiveEvents(local)

    response = webhook.send()

    assert response.status_code == 200, response.content
    receipt = _assert_delivered_once(local, live)
    assert (receipt.source, receipt.esp) == ("esp_webhook", webhook.esp)
    assert receipt.envelope_sender == webhook.envelope_sender
    assert receipt.envelope_recipients == webhook.envelope_recipients
    assert webhook.verdicts.items() <= receipt.verdicts.items()
    stored = blob_read(blob=receipt.blob)
    if webhook.stored is not None:
        assert stored == webhook.stored  # the ESP's bytes, unchanged
        assert receipt.metadata == {"esp_raw": "original"}
    else:
        assert receipt.metadata == {"esp_raw": "rebuilt"}
    assert receipt.event_id == (webhook.event_id or "sha256:" + hashlib.sha256(stored).hexdigest())


@pytest.mark.django_db(transaction=True)
def test_ses_s3_action_stores_the_object_as_downloaded(ses_bucket, s3_endpoint, mailbox, other_mailbox):
    key = "inbound/fqef5sop459utgdf4o9lqbsv7jeo73pejig34301"
    raw = RAW + b"\r\n" + b"x" * 300_000 + b"\r\n"  # more than SNS could carry; several download chunks
    s3_client(s3_endpoint).put_object(Bucket=ses_bucket, Key=key, Body=raw)
    live = LiveEvents([mailbox, other_mailbox])

    response = ses_s3(ses_bucket, key, raw).send()

    assert response.status_code == 200, response.content
    receipt = _assert_delivered_once([mailbox, other_mailbox], live)
    assert receipt.event_id == "fqef5sop459utgdf4o9lqbsv7jeo73pejig34301"
    assert blob_read(blob=receipt.blob) == raw


@pytest.mark.django_db
def test_ses_s3_object_missing_is_a_temporary_failure(ses_bucket, mail_dir):
    response = ses_s3(ses_bucket, "inbound/not-there-yet", RAW).send()
    assert response.status_code == 500  # SNS retries; the object may still be on its way
    assert _nothing_stored(mail_dir)


@pytest.mark.django_db(transaction=True)
def test_ses_utf8_content_is_stored_as_ses_rendered_it(mailbox, other_mailbox):
    webhook = ses_sns(RAW_UTF8, encoding="UTF8")
    assert webhook.send().status_code == 200
    assert blob_read(blob=InboundReceipt.objects.get().blob) == RAW_UTF8


@pytest.mark.django_db(transaction=True)
def test_esp_spam_verdict_files_the_message_as_spam(mailbox, other_mailbox):
    live = LiveEvents([mailbox, other_mailbox])
    assert ses_sns(spam="FAIL").send().status_code == 200
    receipt = _assert_delivered_once([mailbox, other_mailbox], live, folder="Spam")
    assert receipt.verdicts["spam"] is True


@pytest.mark.django_db(transaction=True)
def test_mailgun_without_raw_mime_is_rebuilt_the_same_way_on_every_retry(mailbox):
    """Routes forwarding to .../mailgun/inbound/ get parsed fields only: the rebuilt message must
    still be one blob, however often Mailgun retries with a fresh token."""
    post = {
        "recipient": "alice@example.test",
        "sender": "carol@example.org",
        "message-headers": json.dumps(
            [
                ["From", "Carol <carol@example.org>"],
                ["To", "alice@example.test"],
                ["Subject", "Quarterly numbers"],
                ["Message-Id", "<q3-numbers@example.org>"],
            ]
        ),
        "body-plain": "the numbers are attached.",
        "timestamp": "1793613600",
    }
    for token in ("token-attempt-1", "token-attempt-2"):
        signature = hmac.new(MAILGUN_KEY.encode(), f"{post['timestamp']}{token}".encode(), hashlib.sha256).hexdigest()
        response = Client().post(
            "/anymail/mailgun/inbound/",
            {**post, "token": token, "signature": signature},
            HTTP_AUTHORIZATION=_basic(SECRET),
        )
        assert response.status_code == 200
    assert InboundReceipt.objects.count() == 2  # two tokens: two arrivals as far as Mailgun says
    assert Blob.objects.count() == 1
    assert Message.objects.filter(mailbox=mailbox).count() == 1
    assert InboundReceipt.objects.first().metadata == {"esp_raw": "rebuilt"}


@pytest.mark.django_db
def test_the_previous_secret_still_works_while_rotating(mailbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert postmark(auth=PREVIOUS_SECRET).send().status_code == 200
    assert InboundReceipt.objects.count() == 1


# --- Refused requests leave nothing but a log line -------------------------------------------------


def _wrong_signature() -> Webhook:
    return mailgun_mime(signing_key="key-not-ours")


def _forged_sns() -> Webhook:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return ses_sns(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _tampered_sns() -> Webhook:
    webhook = ses_sns()
    message = json.loads(webhook.post["data"])
    event = json.loads(message["Message"])
    event["receipt"]["recipients"] = ["alice@example.test", "eve@evil.example"]
    message["Message"] = json.dumps(event)
    webhook.post["data"] = json.dumps(message)
    return webhook


def _foreign_cert_host() -> Webhook:
    return ses_sns(cert_url="https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem")


def _without_basic_auth(build, *, guessed: bool = False):
    def without() -> Webhook:
        webhook = build()
        del webhook.post["HTTP_AUTHORIZATION"]
        if guessed:
            webhook.post["HTTP_AUTHORIZATION"] = _basic("mailsite:guessed")
        return webhook

    return without


REFUSED = {
    "postmark-no-basic-auth": (_without_basic_auth(postmark), 400),
    "postmark-wrong-basic-auth": (_without_basic_auth(postmark, guessed=True), 400),
    "ses-no-basic-auth": (_without_basic_auth(ses_sns), 401),  # SNS sends credentials only after a 401
    "ses-wrong-basic-auth": (_without_basic_auth(ses_sns, guessed=True), 400),
    "mailgun-wrong-signature": (_wrong_signature, 400),
    "mailgun-wrong-basic-auth": (lambda: mailgun_mime(auth="mailsite:guessed"), 400),
    "sendgrid-wrong-basic-auth": (lambda: sendgrid_raw(auth="mailsite:guessed"), 400),
    "mailjet-wrong-basic-auth": (lambda: mailjet(auth="mailsite:guessed"), 400),
    "brevo-wrong-basic-auth": (lambda: brevo(auth="mailsite:guessed"), 400),
    "sns-forged-signature": (_forged_sns, 400),
    "sns-tampered-message": (_tampered_sns, 400),
    "sns-foreign-certificate-host": (_foreign_cert_host, 400),
}


@pytest.mark.django_db
@pytest.mark.parametrize(("build", "status"), REFUSED.values(), ids=REFUSED.keys())
def test_unauthenticated_or_forged_requests_leave_no_trace(build, status, mailbox, mail_dir, caplog):
    response = build().send()
    assert response.status_code == status
    assert _nothing_stored(mail_dir)
    assert not Message.objects.exists()
    if status == 400:
        assert any("webhook" in r.getMessage().lower() or "sns" in r.getMessage().lower() for r in caplog.records)


@pytest.mark.django_db
def test_junk_posted_to_the_ses_url_is_refused_not_retried(mail_dir):
    response = Client().post(
        "/anymail/amazon_ses/inbound/", "not json", "text/plain", HTTP_AUTHORIZATION=_basic(SECRET)
    )
    assert response.status_code == 400
    assert _nothing_stored(mail_dir)


@pytest.mark.django_db
def test_a_forged_subscription_confirmation_is_refused_before_confirming(mail_dir):
    signer = sns_signer()
    from cryptography.hazmat.primitives.asymmetric import rsa

    message = signer.sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": "2336412f37fb687f5d51e6e241d09c80",
            "TopicArn": TOPIC_ARN,  # our topic: the forged signature alone must stop it
            "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            "Timestamp": "2026-11-02T10:00:00.000Z",
        },
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
    response = Client().post("/anymail/amazon_ses/inbound/", **sns_post_kwargs(message, auth=SECRET))
    assert response.status_code == 400  # had it got through, Anymail would call SNS to confirm


@pytest.mark.django_db
def test_an_unreachable_certificate_host_is_a_temporary_failure(mail_dir):
    server = CertificateServer()
    url = server.route("/SimpleNotificationService-down.pem", b"try later", status=503)
    response = ses_sns(cert_url=url).send()
    server.httpd.shutdown()
    assert response.status_code == 500  # never 403/406: SNS must retry
    assert _nothing_stored(mail_dir)


# --- Retries, replays and failures on our side -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("build", [ses_sns, mailgun_mime, sendgrid_raw, mailjet], ids=lambda b: b.__name__)
def test_the_same_webhook_three_times_in_a_row_delivers_once(build, mailbox, other_mailbox):
    webhook = build()
    local = [m for m in (mailbox, other_mailbox) if m.address in webhook.envelope_recipients]
    live = LiveEvents(local)

    statuses = [webhook.send().status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    _assert_delivered_once(local, live)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("build", [ses_sns, postmark], ids=lambda b: b.__name__)
def test_the_same_webhook_ten_times_concurrently_delivers_once(build, mailbox, other_mailbox):
    webhook = build()
    local = [m for m in (mailbox, other_mailbox) if m.address in webhook.envelope_recipients]
    live = LiveEvents(local)
    start = threading.Barrier(10)

    def post_once(_: int) -> int:
        try:
            start.wait(timeout=30)
            return webhook.send().status_code
        finally:
            connections.close_all()  # each thread had its own connection to the test database

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(post_once, range(10)))

    assert statuses == [200] * 10
    _assert_delivered_once(local, live)


@pytest.mark.django_db
def test_storage_down_answers_5xx_and_writes_nothing(settings, tmp_path, mailbox):
    blocked = tmp_path / "not-a-directory"
    blocked.write_bytes(b"")  # the mail storage's root is a file: every write fails
    settings.STORAGES = {
        **settings.STORAGES,
        "mail": {"BACKEND": "delivery.storage.DurableFileSystemStorage", "OPTIONS": {"location": str(blocked)}},
    }

    response = postmark().send()

    assert response.status_code == 500  # never 403/406: the ESP must retry
    assert not InboundReceipt.objects.exists()
    assert not Blob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_database_down_answers_5xx_leaves_no_rows_and_the_retry_succeeds(mailbox, other_mailbox):
    def receipt_insert_fails(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "delivery_inboundreceipt"'):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    webhook = sendgrid_raw()
    with connection.execute_wrapper(receipt_insert_fails):
        response = webhook.send()
    assert response.status_code == 500
    assert not InboundReceipt.objects.exists()
    assert not Blob.objects.exists()  # the blob row went with the failed transaction

    live = LiveEvents([mailbox, other_mailbox])
    assert webhook.send().status_code == 200  # the ESP's retry
    _assert_delivered_once([mailbox, other_mailbox], live)


@requires_redis
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server program")
@pytest.mark.django_db(transaction=True)
@pytest.mark.real_broker
def test_a_broker_outage_still_answers_2xx_and_the_sweeper_completes_it(
    mailbox,
    other_mailbox,
    broker,
    start_worker,
    tmp_path,
):
    """Queuing the parse is best effort after the commit; the sweeper finds what it missed, and the
    worker's log lines carry the webhook request's correlation id."""
    broker.stop()  # the Redis this process queues on is really gone
    assert ses_sns().send().status_code == 200
    receipt = InboundReceipt.objects.get()
    assert receipt.status == InboundReceipt.Status.RECEIVED
    assert blob_read(blob=receipt.blob) == RAW
    assert not Message.objects.exists()

    broker.start()
    start_worker("sweeper", MAILSITE_RECEIPT_SWEEP_AFTER_SECONDS="0")
    receipts_sweep_task.delay()  # what beat sends every minute, run by the worker

    wait_for(lambda: InboundReceipt.objects.get().status == InboundReceipt.Status.PARSED, "the sweeper's parse")
    for owner in (mailbox, other_mailbox):
        assert Message.objects.filter(mailbox=owner, receipt=receipt).count() == 1
    assert receipt.correlation_id in (tmp_path / "sweeper.log").read_text()


@requires_redis
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server program")
@pytest.mark.django_db
@pytest.mark.real_broker
def test_the_sweeper_waits_while_the_broker_still_holds_parse_tasks(
    mailbox,
    settings,
    broker,
):
    """A backlog is not a lost task: queueing its receipts again would only double the backlog."""
    settings.MAILSITE_RECEIPT_SWEEP_AFTER = timedelta(0)
    waiting = inbound_receipt_create(source="smtp", raw=RAW, envelope_recipients=["alice@example.test"]).receipt
    receipt_process_task.delay(waiting.id)  # queued; no worker has reached it yet

    assert receipts_sweep_task() == 0
    assert queue_depth() == 1

    app.control.purge()  # the broker lost it after all
    assert receipts_sweep_task() == 1
    assert queue_depth() == 1  # queued again, once


@pytest.mark.django_db
def test_the_webhook_requests_id_is_its_receipts_correlation_id(mailbox, other_mailbox, caplog):
    with caplog.at_level(logging.INFO):
        assert sendgrid_raw().send().status_code == 200

    received = logged_events(caplog)["inbound.received"]
    assert received["request_id"]
    assert InboundReceipt.objects.get().correlation_id == received["request_id"]
