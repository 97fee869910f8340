"""Who may post to the ESP webhooks: nobody while no secret is set (outside debug mode), and for
Amazon SES only our own SNS topics and receipt buckets (delivery.webhooks, delivery.sns).

Real requests through Django's full stack; SNS messages genuinely signed (tests.sns), the S3
action's bucket on moto's standalone S3 server; PostgreSQL is the real one.
"""

import json
import logging
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from delivery.models import Blob, InboundReceipt
from tests.mailbox.test_webhooks import RAW, SECRET, postmark, ses_s3, ses_sns
from tests.s3 import CREDENTIALS, REGION, moto_server, s3_client
from tests.sns import LOCAL_CERT_URL_PATTERN, TOPIC_ARN, sns_post_kwargs, sns_signer

FOREIGN_TOPIC = "arn:aws:sns:us-east-1:222222222222:SomeoneElses"


@pytest.fixture
def secret_set(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": [SECRET], "AMAZON_SES_SESSION_PARAMS": {**CREDENTIALS, "region_name": REGION}}
    settings.MAILSITE_SNS_CERT_URL_PATTERN = LOCAL_CERT_URL_PATTERN
    settings.MAILSITE_SNS_TOPIC_ARNS = [TOPIC_ARN]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _nothing_stored() -> bool:
    return not InboundReceipt.objects.exists() and not Blob.objects.exists()


# --- No secret: fail closed, except in debug mode ---------------------------------------------------


@pytest.mark.django_db
def test_without_a_secret_every_webhook_is_refused_outside_debug_mode(settings, mailbox, caplog):
    settings.DEBUG = False
    settings.ANYMAIL = {"WEBHOOK_SECRET": []}
    caplog.set_level(logging.ERROR)

    response = Client().post(postmark().url, **{**postmark().post, "HTTP_AUTHORIZATION": ""})

    assert response.status_code == 503  # our configuration's fault: the ESP retries, mail is not lost
    assert _nothing_stored()
    assert "webhook.refused_unconfigured" in caplog.text
    assert "ANYMAIL_WEBHOOK_SECRET is not set" in caplog.text


@pytest.mark.django_db
def test_without_a_secret_no_anymail_url_answers_anything_but_503(settings):
    settings.DEBUG = False
    settings.ANYMAIL = {}
    from mailsite.urls import _anymail_patterns

    client = Client(raise_request_exception=False)
    for pattern in _anymail_patterns():
        url = reverse(f"anymail:{pattern.name}")
        assert client.post(url, b"{}", content_type="application/json").status_code == 503, url
        assert client.head(url).status_code == 503, url  # an ESP's set-up probe fails too: visible at once


@pytest.mark.django_db
def test_in_debug_mode_webhooks_without_a_secret_still_work(settings, mailbox, other_mailbox):
    """``make run``: nothing configured, webhooks posted by hand while developing."""
    settings.DEBUG = True
    settings.ANYMAIL = {"WEBHOOK_SECRET": []}

    response = Client().post(postmark().url, **{**postmark().post, "HTTP_AUTHORIZATION": ""})

    assert response.status_code == 200
    assert InboundReceipt.objects.count() == 1


@pytest.mark.django_db
def test_with_a_secret_the_wrong_one_is_a_400_and_the_right_one_is_accepted(secret_set, settings, mailbox):
    settings.DEBUG = False
    assert postmark(auth="mailsite:wrong").send().status_code == 400
    assert _nothing_stored()
    assert postmark(auth=SECRET).send().status_code == 200


# --- SNS: our topics only ------------------------------------------------------------------------------


def _ses_sns_from(topic_arn: str) -> dict:
    """A genuine, correctly signed SES receipt notification published on ``topic_arn``."""
    webhook = ses_sns()
    notification = json.loads(webhook.post["data"])
    return sns_signer().sign({**notification, "TopicArn": topic_arn})


@pytest.mark.django_db
def test_a_signed_notification_from_a_foreign_topic_is_refused(secret_set, mailbox, caplog):
    caplog.set_level(logging.WARNING)
    message = _ses_sns_from(FOREIGN_TOPIC)

    response = Client().post("/anymail/amazon_ses/inbound/", **sns_post_kwargs(message, auth=SECRET))

    assert response.status_code == 400
    assert _nothing_stored()
    assert "sns.refused_source" in caplog.text
    assert FOREIGN_TOPIC in caplog.text


@pytest.mark.django_db
def test_a_signed_notification_from_our_topic_is_accepted(secret_set, mailbox):
    message = _ses_sns_from(TOPIC_ARN)

    response = Client().post("/anymail/amazon_ses/inbound/", **sns_post_kwargs(message, auth=SECRET))

    assert response.status_code == 200
    assert InboundReceipt.objects.count() == 1


@pytest.mark.django_db
def test_a_subscription_to_a_foreign_topic_is_never_confirmed(secret_set, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": True}
    message = sns_signer().sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": "2336412f37fb687f5d51e6e241d09c80",
            "TopicArn": FOREIGN_TOPIC,
            "Message": f"You have chosen to subscribe to the topic {FOREIGN_TOPIC}.",
            "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            "Timestamp": "2026-11-02T10:00:00.000Z",
        }
    )
    # Had it got through, Anymail would call SNS (no network here: a 500) to confirm the subscription.
    response = Client().post("/anymail/amazon_ses/inbound/", **sns_post_kwargs(message, auth=SECRET))
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_foreign_topic_is_refused_on_the_tracking_webhook_too(secret_set):
    message = sns_signer().sign(
        {**sns_signer().notification({"eventType": "Delivery", "mail": {}}), "TopicArn": FOREIGN_TOPIC}
    )
    response = Client().post("/anymail/amazon_ses/tracking/", **sns_post_kwargs(message, auth=SECRET))
    assert response.status_code == 400


@pytest.mark.django_db
def test_no_topic_configured_is_a_temporary_failure_on_our_side(secret_set, settings, mailbox, caplog):
    settings.MAILSITE_SNS_TOPIC_ARNS = []
    caplog.set_level(logging.ERROR)

    response = ses_sns().send()

    assert response.status_code == 500  # SNS retries 5xx only: once the setting is made, the mail comes
    assert _nothing_stored()
    assert "MAILSITE_SNS_TOPIC_ARNS is not set" in caplog.text


# --- SES S3 action: our buckets only -------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def two_buckets(secret_set, settings, s3_endpoint):
    """Our receipt bucket (allow-listed) and another one our credentials can also read."""
    ours, theirs = (f"ses-{name}-{uuid.uuid4().hex[:10]}" for name in ("ours", "theirs"))
    client = s3_client(s3_endpoint)
    for bucket in (ours, theirs):
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="inbound/message", Body=RAW)
    settings.ANYMAIL = {**settings.ANYMAIL, "AMAZON_SES_CLIENT_PARAMS": {"endpoint_url": s3_endpoint}}
    settings.MAILSITE_SES_INBOUND_BUCKETS = [ours]
    return ours, theirs


@pytest.mark.django_db
def test_an_s3_action_naming_a_foreign_bucket_is_refused_without_fetching(two_buckets, mailbox, caplog):
    _, theirs = two_buckets
    caplog.set_level(logging.WARNING)

    response = ses_s3(theirs, "inbound/message", RAW).send()

    assert response.status_code == 400
    assert _nothing_stored()
    assert "sns.refused_source" in caplog.text
    assert theirs in caplog.text


@pytest.mark.django_db
def test_an_s3_action_naming_our_bucket_is_fetched(two_buckets, mailbox, other_mailbox):
    ours, _ = two_buckets

    response = ses_s3(ours, "inbound/message", RAW).send()

    assert response.status_code == 200
    assert InboundReceipt.objects.count() == 1


@pytest.mark.django_db
def test_no_bucket_configured_is_a_temporary_failure_on_our_side(two_buckets, settings, mailbox):
    ours, _ = two_buckets
    settings.MAILSITE_SES_INBOUND_BUCKETS = []

    response = ses_s3(ours, "inbound/message", RAW).send()

    assert response.status_code == 500
    assert _nothing_stored()
