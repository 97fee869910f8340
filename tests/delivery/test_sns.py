"""Amazon SNS signatures: what Anymail does not check, we do (delivery.sns).

Messages are signed with a test key; its certificate is served over HTTP from 127.0.0.1, which
only these tests allow through MAILSITE_SNS_CERT_URL_PATTERN.
"""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from delivery import sns
from delivery.sns import SnsCertificateUnavailable, SnsSignatureInvalid, sns_cert_url_allowed, sns_message_verify
from tests.s3 import free_port
from tests.sns import LOCAL_CERT_URL_PATTERN, TOPIC_ARN, self_signed_certificate, sns_signer

SES_EVENT = {"notificationType": "Received", "mail": {"messageId": "abc"}, "receipt": {"action": {"type": "SNS"}}}


@pytest.fixture
def signer(settings):
    settings.MAILSITE_SNS_CERT_URL_PATTERN = LOCAL_CERT_URL_PATTERN
    return sns_signer()


def _subscription_confirmation() -> dict:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3b" * 2,
        "TopicArn": TOPIC_ARN,
        "Message": f"You have chosen to subscribe to the topic {TOPIC_ARN}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC_ARN,
        "Timestamp": "2026-11-02T10:00:00.000Z",
    }


@pytest.mark.parametrize("version", ["1", "2"])
def test_genuine_notifications_verify(signer, version):
    sns_message_verify(message=signer.notification(SES_EVENT, version=version))


@pytest.mark.parametrize("version", ["1", "2"])
def test_genuine_subscription_confirmations_verify(signer, version):
    sns_message_verify(message=signer.sign(_subscription_confirmation(), version=version))


def test_a_notification_without_subject_verifies(signer):
    message = signer.notification(SES_EVENT)
    del message["Subject"]
    sns_message_verify(message=signer.sign(message))


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda m: m.update(Message=json.dumps({**SES_EVENT, "content": "forged"})), id="message"),
        pytest.param(lambda m: m.update(TopicArn="arn:aws:sns:us-east-1:222222222222:Other"), id="topic"),
        pytest.param(lambda m: m.update(Subject="changed"), id="subject"),
        pytest.param(lambda m: m.pop("Subject"), id="subject-removed"),
        pytest.param(lambda m: m.update(Timestamp="2030-01-01T00:00:00.000Z"), id="timestamp"),
        pytest.param(lambda m: m.update(SignatureVersion="2"), id="version-swapped"),
    ],
)
def test_tampered_notifications_are_refused(signer, tamper):
    message = signer.notification(SES_EVENT)
    tamper(message)
    with pytest.raises(SnsSignatureInvalid):
        sns_message_verify(message=message)


def test_a_message_signed_by_another_key_is_refused(signer):
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(SnsSignatureInvalid, match="does not match"):
        sns_message_verify(message=signer.notification(SES_EVENT, key=forger))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("SignatureVersion", "3"),
        ("Signature", "not base64!"),
        ("Signature", None),
        ("Type", "SomethingElse"),
        ("MessageId", None),
    ],
)
def test_malformed_messages_are_refused(signer, field, value):
    message = signer.notification(SES_EVENT)
    if value is None:
        del message[field]
    else:
        message[field] = value
    with pytest.raises(SnsSignatureInvalid):
        sns_message_verify(message=message)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem", True),
        ("https://sns.eu-west-3.amazonaws.com/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem", True),
        (
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-3242f28d2ba6d28ab9ba9d.pem",
            True,
        ),
        ("http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem", False),
        ("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", False),
        ("https://sns.us-east-1.amazonaws.com@evil.example/x.pem", False),
        ("https://evil.example/sns.us-east-1.amazonaws.com/x.pem", False),
        ("https://s3.amazonaws.com/sns/x.pem", False),
        ("https://sns.us-east-1.amazonaws.com/x.pem?redirect=https://evil.example/", False),
        ("https://sns.us-east-1.amazonaws.com/x.pem\n", False),
        ("https://sns.us-east-1.amazonaws.com/x.txt", False),
        ("http://127.0.0.1:8080/cert.pem", False),
    ],
)
def test_only_amazon_sns_hosts_over_https_are_allowed_by_default(url, allowed):
    assert sns_cert_url_allowed(url) is allowed


def test_a_foreign_certificate_host_is_refused_without_fetching(signer, settings):
    settings.MAILSITE_SNS_CERT_URL_PATTERN = sns.DEFAULT_CERT_URL_PATTERN  # production's allow-list
    hits_before = dict(signer.server.hits)
    with pytest.raises(SnsSignatureInvalid, match="not allowed"):
        sns_message_verify(message=signer.notification(SES_EVENT))  # its certificate is on 127.0.0.1
    assert signer.server.hits == hits_before


def test_the_certificate_is_fetched_once_and_cached(signer):
    url = signer.server.route("/cached-cert.pem", self_signed_certificate(signer.key))
    for _ in range(3):
        sns_message_verify(message=signer.notification(SES_EVENT, cert_url=url))
    assert signer.server.hits["/cached-cert.pem"] == 1


def test_redirects_are_not_followed(signer):
    url = signer.server.route("/moved.pem", b"", status=302, headers={"Location": signer.cert_url})
    hits_before = signer.server.hits.get(signer.cert_url.rsplit("/", 1)[1], 0)
    with pytest.raises(SnsSignatureInvalid, match="302"):
        sns_message_verify(message=signer.notification(SES_EVENT, cert_url=url))
    assert signer.server.hits.get(signer.cert_url.rsplit("/", 1)[1], 0) == hits_before


def test_a_missing_certificate_is_refused(signer):
    with pytest.raises(SnsSignatureInvalid, match="404"):
        sns_message_verify(message=signer.notification(SES_EVENT, cert_url=signer.server.base_url + "/gone.pem"))


def test_garbage_instead_of_a_certificate_is_refused(signer):
    url = signer.server.route("/garbage.pem", b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(SnsSignatureInvalid, match="not a PEM certificate"):
        sns_message_verify(message=signer.notification(SES_EVENT, cert_url=url))


def test_an_expired_certificate_is_refused(signer):
    url = signer.server.route("/expired.pem", self_signed_certificate(signer.key, valid_days=-1))
    with pytest.raises(SnsSignatureInvalid, match="not valid now"):
        sns_message_verify(message=signer.notification(SES_EVENT, cert_url=url))


def test_a_failing_certificate_host_is_a_temporary_failure(signer):
    url = signer.server.route("/unavailable.pem", b"try later", status=503)
    with pytest.raises(SnsCertificateUnavailable):
        sns_message_verify(message=signer.notification(SES_EVENT, cert_url=url))


def test_an_unreachable_certificate_host_is_a_temporary_failure(signer):
    url = f"http://127.0.0.1:{free_port()}/closed.pem"  # nothing listens there
    with pytest.raises(SnsCertificateUnavailable):
        sns_message_verify(message=signer.notification(SES_EVENT, cert_url=url))
