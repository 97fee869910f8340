"""Tracking: ESP webhooks in each ESP's own payload shape (as documented by the ESP and parsed by
Anymail's real views), replayed and out of order; bounce reports (DSN) arriving as mail."""

import asyncio
import base64
import hashlib
import hmac
import json
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from delivery.models import DeliveryEvent, InboundReceipt, OutboundDelivery, Suppression
from mailbox.models import Message
from mailbox.services.ingest import inbound_accept
from mailbox.services.sending import delivery_timeline_for_message
from mailsite.models import DomainEvent
from mailsite.realtime import mailbox_group_name

SECRET = "mailsite:tracking-secret"
MAILGUN_KEY = "key-tracking-0123456789"


@pytest.fixture(autouse=True)
def _configured(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": [SECRET], "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.MAILSITE_UNDO_SEND_SECONDS = 0
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _auth() -> str:
    return "Basic " + base64.b64encode(SECRET.encode()).decode()


@pytest.fixture
def post_json(client, django_capture_on_commit_callbacks):
    """POST a webhook as the ESP does, running what the request queued for after its commit."""

    def post(url: str, payload) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                url, json.dumps(payload), content_type="application/json", HTTP_AUTHORIZATION=_auth()
            )
        return response.status_code

    return post


@pytest.fixture
def accept(django_capture_on_commit_callbacks):
    def accept_(**kwargs) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            inbound_accept(source="smtp", **kwargs)

    return accept_


def mailgun_event(delivery: OutboundDelivery, event_id: str, event: str, **data) -> dict:
    """Mailgun's webhook JSON (documentation.mailgun.com, "Webhooks": signature + event-data)."""
    timestamp, token = str(int(time.time())), hashlib.sha256(event_id.encode()).hexdigest()
    signature = hmac.new(MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": event,
            "id": event_id,
            "timestamp": data.pop("at", time.time()),
            "recipient": delivery.recipient,
            "tags": ["sent"],
            "user-variables": {"delivery_id": str(delivery.id), "attempt_id": str(delivery.attempt_id)},
            "message": {"headers": {"message-id": delivery.rfc_message_id}},
            **data,
        },
    }


def postmark_bounce(delivery: OutboundDelivery, *, metadata: bool = True) -> dict:
    """Postmark's bounce webhook (postmarkapp.com/developer/webhooks/bounce-webhook)."""
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "sent",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"delivery_id": str(delivery.id)} if metadata else {},
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": delivery.recipient,
        "From": "alice@example.test",
        "BouncedAt": "2026-11-28T05:00:00.0000000Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Hi",
    }


def sendgrid_events(delivery: OutboundDelivery, *events: tuple[str, str]) -> list[dict]:
    """SendGrid's Event Webhook: a JSON list; custom args arrive as top-level fields."""
    return [
        {
            "email": delivery.recipient,
            "timestamp": 1795000000 + index,
            "smtp-id": f"<{delivery.rfc_message_id}>",
            "event": event,
            "sg_event_id": event_id,
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "delivery_id": str(delivery.id),
        }
        for index, (event, event_id) in enumerate(events)
    ]


def events_of(delivery: OutboundDelivery) -> list[str]:
    return list(delivery.events.order_by("id").values_list("event_type", flat=True))


def test_a_late_deferred_never_overwrites_delivered_and_a_replay_changes_nothing(post_json, delivery):
    delivered = mailgun_event(delivery, "ev-delivered", "delivered", **{"delivery-status": {"code": 250}})
    deferred = mailgun_event(
        delivery,
        "ev-deferred",
        "failed",
        severity="temporary",
        at=time.time() - 60,
        **{"delivery-status": {"code": 451, "message": "4.7.1 greylisted, try again"}},
    )

    assert post_json("/anymail/mailgun/tracking/", delivered) == 200
    assert post_json("/anymail/mailgun/tracking/", deferred) == 200
    assert post_json("/anymail/mailgun/tracking/", delivered) == 200

    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert events_of(delivery) == ["queued", "sent", "delivered", "deferred"]
    # Anymail identifies a Mailgun event by its signature token: the replay carries the same one.
    assert DeliveryEvent.objects.filter(esp="mailgun", event_type="delivered").count() == 1
    assert not Suppression.objects.exists()


def test_a_hard_bounce_fails_the_delivery_suppresses_and_tells_the_sender_live(post_json, delivery, mailbox):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(mailbox_group_name(mailbox.id), channel)

    assert post_json("/anymail/postmark/tracking/", postmark_bounce(delivery)) == 200

    delivery.refresh_from_db()
    assert delivery.status == "bounced"
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.source) == (
        "carol@example.org",
        "hard_bounce",
        "esp:postmark",
    )
    [timeline] = delivery_timeline_for_message(mailbox=mailbox, message_id=delivery.message_id)
    assert timeline.failure_text.startswith("Not delivered to carol@example.org: smtp;550 5.1.1")
    pushed = async_to_sync(asyncio.wait_for)(layer.receive(channel), timeout=5)["payload"]
    event = DomainEvent.objects.get(event_type="delivery.status_changed", payload__status="bounced")
    assert pushed == {"type": "delivery.updated", "message_id": delivery.message_id, "event_id": event.id}


def test_without_metadata_the_esp_message_id_finds_the_delivery(post_json, delivery):
    OutboundDelivery.objects.filter(pk=delivery.pk).update(
        esp="postmark", esp_message_id="883953f4-6105-42a2-a16a-77a8eac79483"
    )

    assert post_json("/anymail/postmark/tracking/", postmark_bounce(delivery, metadata=False)) == 200

    delivery.refresh_from_db()
    assert delivery.status == "bounced"


# Anymail warns on every SendGrid webhook that it no longer supports SendGrid officially.
@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_sendgrid_complaint_suppresses_and_opens_leave_the_status_alone(post_json, delivery):
    payload = sendgrid_events(delivery, ("delivered", "sg-1"), ("open", "sg-2"), ("spamreport", "sg-3"))

    assert post_json("/anymail/sendgrid/tracking/", list(reversed(payload))) == 200
    assert post_json("/anymail/sendgrid/tracking/", payload) == 200

    delivery.refresh_from_db()
    assert delivery.status == "complained"
    assert sorted(events_of(delivery)) == ["complained", "delivered", "opened", "queued", "sent"]
    assert Suppression.objects.get().reason == "complaint"


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_an_event_for_mail_we_did_not_send_is_ignored(post_json, delivery):
    payload = sendgrid_events(delivery, ("delivered", "sg-9"))
    payload[0]["delivery_id"] = "999999"

    assert post_json("/anymail/sendgrid/tracking/", payload) == 200
    assert events_of(delivery) == ["queued", "sent"]


# --- Bounce reports arriving as mail -----------------------------------------------------------


def dsn(original_message_id: str, *, to: str, recipient: str = "carol@example.org") -> bytes:
    """A delivery status notification (RFC 3464) as an MTA writes it."""
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Sat, 28 Nov 2026 05:00:00 +0000\r\n"
        "Message-ID: <dsn-1@mx.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{original_message_id}>\r\nSubject: Hi\r\n"
        "--b--\r\n"
    ).encode()


def test_a_bounce_to_the_verp_return_path_bounces_that_delivery(delivery, accept):
    raw = dsn("unrelated@example.test", to=delivery.envelope_sender)

    accept(raw=raw, envelope_recipients=[delivery.envelope_sender])
    accept(raw=raw, event_id="again", envelope_recipients=[delivery.envelope_sender])

    delivery.refresh_from_db()
    assert delivery.status == "bounced"
    assert delivery.last_error == "smtp; 550 5.1.1 user unknown"
    assert Suppression.objects.get().source == "dsn"
    assert InboundReceipt.objects.filter(status="parsed").count() == 2
    assert DeliveryEvent.objects.filter(esp="dsn").count() == 2  # one per report, none twice per report
    assert not Message.objects.filter(subject__startswith="Undelivered").exists()


def test_a_bounce_to_the_sender_matches_by_original_message_id_and_is_also_filed(delivery, mailbox, accept):
    raw = dsn(delivery.rfc_message_id, to=mailbox.address)

    accept(raw=raw, envelope_recipients=[mailbox.address])

    delivery.refresh_from_db()
    assert delivery.status == "bounced"
    assert Message.objects.filter(mailbox=mailbox, subject="Undelivered Mail Returned to Sender").exists()
