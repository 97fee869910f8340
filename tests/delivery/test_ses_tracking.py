"""Amazon SES tracking webhooks: SNS notifications of SES events (configuration-set event
publishing), checked by the same SNS signature code as the inbound webhook (``delivery.sns``).
A forged, tampered or unsigned notification is refused with a 4xx and records nothing."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from delivery.models import DeliveryEvent, OutboundDelivery, Suppression
from tests.sns import LOCAL_CERT_URL_PATTERN, TOPIC_ARN, sns_post_kwargs, sns_signer

SECRET = "mailsite:ses-tracking-secret"
URL = "/anymail/amazon_ses/tracking/"


@pytest.fixture(autouse=True)
def _configured(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": [SECRET]}
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.MAILSITE_UNDO_SEND_SECONDS = 0
    settings.MAILSITE_SNS_CERT_URL_PATTERN = LOCAL_CERT_URL_PATTERN
    settings.MAILSITE_SNS_TOPIC_ARNS = [TOPIC_ARN]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def ses_event(delivery: OutboundDelivery, event_type: str) -> dict:
    """An SES event as event publishing puts it in the SNS Message (docs.aws.amazon.com/ses,
    "Contents of event data that Amazon SES publishes to Amazon SNS"); Anymail's SES backend sends
    our metadata as the X-Metadata header, which SES echoes under mail.headers."""
    mail = {
        "timestamp": "2026-11-28T08:00:00.000Z",
        "source": "alice@example.test",
        "messageId": "0100018f-ses-message-id-000000",
        "destination": [delivery.recipient],
        "headersTruncated": False,
        "headers": [
            {"name": "X-Metadata", "value": json.dumps({"delivery_id": str(delivery.id)})},
            {"name": "X-Tag", "value": "sent"},
        ],
        "tags": {"ses:configuration-set": ["mailsite"]},
    }
    details = {
        "Bounce": {
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {
                        "emailAddress": delivery.recipient,
                        "action": "failed",
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
                "timestamp": "2026-11-28T08:00:02.000Z",
                "feedbackId": "0100018f-feedback",
            }
        },
        "Delivery": {
            "delivery": {
                "timestamp": "2026-11-28T08:00:01.000Z",
                "processingTimeMillis": 546,
                "recipients": [delivery.recipient],
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
            }
        },
    }[event_type]
    return {"eventType": event_type, "mail": mail, **details}


def post(client, message: dict, *, auth: str | None = SECRET) -> int:
    return client.post(URL, **sns_post_kwargs(message, auth=auth)).status_code


def test_a_signed_bounce_bounces_the_delivery_and_a_replay_changes_nothing(client, delivery):
    notification = sns_signer().notification(ses_event(delivery, "Bounce"))

    assert post(client, notification) == 200
    assert post(client, notification) == 200  # SNS retries: same MessageId

    delivery.refresh_from_db()
    assert delivery.status == "bounced"
    assert delivery.last_error == "smtp; 550 5.1.1 user unknown"
    assert DeliveryEvent.objects.filter(delivery=delivery, esp="amazon_ses", event_type="bounced").count() == 1
    assert Suppression.objects.get().source == "esp:amazon_ses"


def test_a_late_delivery_after_the_bounce_is_kept_but_changes_no_status(client, delivery):
    signer = sns_signer()
    assert post(client, signer.notification(ses_event(delivery, "Bounce"), version="2")) == 200
    assert post(client, signer.notification(ses_event(delivery, "Delivery"))) == 200

    delivery.refresh_from_db()
    assert delivery.status == "bounced"
    assert list(delivery.events.order_by("id").values_list("event_type", flat=True)) == [
        "queued",
        "sent",
        "bounced",
        "delivered",
    ]


def _unsigned(message: dict) -> dict:
    return {k: v for k, v in message.items() if k not in ("Signature", "SignatureVersion", "SigningCertURL")}


def _tampered(message: dict) -> dict:
    event = json.loads(message["Message"])
    event["bounce"]["bouncedRecipients"][0]["emailAddress"] = "someone-else@example.org"
    return {**message, "Message": json.dumps(event)}


def _forged(message: dict) -> dict:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return sns_signer().sign(_unsigned(message), key=forger)


def _foreign_certificate(message: dict) -> dict:
    return sns_signer().sign(_unsigned(message), cert_url="http://evil.example.org/cert.pem")


@pytest.mark.parametrize("forge", [_unsigned, _tampered, _forged, _foreign_certificate])
def test_a_forged_or_unsigned_notification_is_refused_and_records_nothing(client, delivery, forge):
    message = forge(sns_signer().notification(ses_event(delivery, "Bounce")))

    assert post(client, message) == 400

    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert not DeliveryEvent.objects.filter(esp="amazon_ses").exists()
    assert not Suppression.objects.exists()


def test_without_basic_auth_the_notification_is_refused_before_any_signature_check(client, delivery):
    signer = sns_signer()
    fetched = dict(signer.server.hits)

    assert post(client, signer.notification(ses_event(delivery, "Bounce")), auth=None) == 401
    assert post(client, signer.notification(ses_event(delivery, "Bounce")), auth="mailsite:wrong") == 400

    assert signer.server.hits == fetched  # no certificate fetched for an unauthenticated caller
    assert not DeliveryEvent.objects.filter(esp="amazon_ses").exists()
