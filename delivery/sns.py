"""Amazon SNS message signatures, and Anymail's Amazon SES webhook views that check them.

Anymail does not verify SNS signatures, so anyone who learns the webhook URL and its basic-auth
secret could post a made-up notification. Here every SNS message must carry a valid signature:
the signing certificate is fetched only from an allow-listed Amazon host over HTTPS, without
following redirects, and cached per process.
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html

A valid signature proves only that SNS sent the message, and anyone can create a topic and
subscribe our URL to it. So the message's topic must also be one of ours
(``MAILSITE_SNS_TOPIC_ARNS``), and an S3 receipt action must name one of our buckets
(``MAILSITE_SES_INBOUND_BUCKETS``) before we fetch from it with our own credentials. A foreign
topic or bucket is refused with a 400 and a log line; an empty allow-list is our configuration's
fault, answered 5xx so SNS retries until it is set (it retries nothing else).
"""

import base64
import binascii
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import structlog
from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView, AmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailBasicAuthMixin
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

logger = structlog.get_logger(__name__)

# Only Amazon's own SNS endpoints may name the certificate (commercial and China partitions).
DEFAULT_CERT_URL_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^?#]+\.pem$"
# The fields each message type signs, in the order of the canonical string.
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
CERT_FETCH_TIMEOUT_SECONDS = 5
CERT_MAX_BYTES = 64 * 1024
# Set by the inbound view on Anymail's message: the exact bytes SES stored or sent.
ORIGINAL_BYTES_ATTRIBUTE = "mailsite_original_bytes"


class SnsSignatureInvalid(AnymailWebhookValidationFailure):
    """The message is not provably from Amazon SNS: answered 400, nothing stored."""


class SnsCertificateUnavailable(Exception):
    """The signing certificate could not be fetched just now: a 5xx, so SNS retries later."""


class SnsSourceNotAllowed(AnymailWebhookValidationFailure):
    """A genuine SNS message from a topic, or naming a bucket, that is not ours: answered 400."""


class SnsAllowListNotConfigured(Exception):
    """No topic (or bucket) is allowed yet: a 5xx, so SNS retries until the setting is made."""


def sns_topic_check(*, topic_arn: object) -> None:
    """Accept only messages from the topics in ``MAILSITE_SNS_TOPIC_ARNS``."""
    _allow_listed(value=topic_arn, setting="MAILSITE_SNS_TOPIC_ARNS", what="SNS topic")


def ses_bucket_check(*, bucket: object) -> None:
    """Fetch an SES S3 action's object only from the buckets in ``MAILSITE_SES_INBOUND_BUCKETS``."""
    _allow_listed(value=bucket, setting="MAILSITE_SES_INBOUND_BUCKETS", what="SES receipt bucket")


def _allow_listed(*, value: object, setting: str, what: str) -> None:
    allowed = getattr(settings, setting, [])
    if not allowed:
        logger.error("sns.refused_unconfigured", setting=setting, value=str(value)[:300])
        raise SnsAllowListNotConfigured(f"{setting} is not set: every {what} is refused until it is")
    if value not in allowed:
        logger.warning("sns.refused_source", setting=setting, value=str(value)[:300])
        raise SnsSourceNotAllowed(f"{what} {str(value)[:300]!r} is not in {setting}")


def sns_message_verify(*, message: dict[str, Any]) -> None:
    """Check an SNS message's signature (versions 1 and 2) against Amazon's certificate.

    Raises ``SnsSignatureInvalid`` for anything forged, tampered or malformed and
    ``SnsCertificateUnavailable`` when the certificate host cannot be reached.
    """
    fields = SIGNED_FIELDS.get(message.get("Type"))
    hash_class = SIGNATURE_HASHES.get(str(message.get("SignatureVersion", "")))
    if fields is None or hash_class is None:
        raise SnsSignatureInvalid(f"unsupported SNS message type or signature version: {message.get('Type')!r}")
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except (KeyError, TypeError, binascii.Error) as error:
        raise SnsSignatureInvalid("SNS message without a readable signature") from error
    public_key = _signing_key(str(message.get("SigningCertURL", "")))
    try:
        public_key.verify(signature, sns_canonical_string(message, fields), padding.PKCS1v15(), hash_class())
    except InvalidSignature as error:
        raise SnsSignatureInvalid("SNS message signature does not match") from error


def sns_canonical_string(message: dict[str, Any], fields: tuple[str, ...]) -> bytes:
    """The bytes SNS signs: each present field's name and value, one per line."""
    missing = [name for name in fields if name != "Subject" and not isinstance(message.get(name), str)]
    if missing:
        raise SnsSignatureInvalid(f"SNS message lacks signed fields {missing}")
    present = [name for name in fields if isinstance(message.get(name), str)]
    return "".join(f"{name}\n{message[name]}\n" for name in present).encode("utf-8")


def sns_cert_url_allowed(url: str) -> bool:
    """Amazon's SNS hosts over HTTPS; tests alone point ``MAILSITE_SNS_CERT_URL_PATTERN`` elsewhere."""
    return re.fullmatch(getattr(settings, "MAILSITE_SNS_CERT_URL_PATTERN", DEFAULT_CERT_URL_PATTERN), url) is not None


_keys: dict[str, tuple[rsa.RSAPublicKey, Any]] = {}
_keys_lock = threading.Lock()


def _signing_key(url: str) -> rsa.RSAPublicKey:
    """The certificate's public key, fetched once per process and URL while it is valid."""
    if not sns_cert_url_allowed(url):
        raise SnsSignatureInvalid(f"SNS signing certificate URL not allowed: {url!r}")
    with _keys_lock:
        cached = _keys.get(url)
    if cached is not None and cached[1] > timezone.now():
        return cached[0]
    certificate = _certificate_fetch(url)
    now = timezone.now()
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
        raise SnsSignatureInvalid("SNS signing certificate is not valid now")
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SnsSignatureInvalid("SNS signing certificate does not hold an RSA key")
    with _keys_lock:
        if len(_keys) >= 32:  # a handful of real certificates; never let the cache grow
            _keys.clear()
        _keys[url] = (public_key, certificate.not_valid_after_utc)
    return public_key


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


_opener = urllib.request.build_opener(_NoRedirects)


def _certificate_fetch(url: str) -> x509.Certificate:
    try:
        with _opener.open(url, timeout=CERT_FETCH_TIMEOUT_SECONDS) as response:
            pem = response.read(CERT_MAX_BYTES + 1)
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            raise SnsCertificateUnavailable(f"{url} answered {error.code}") from error
        raise SnsSignatureInvalid(f"SNS signing certificate {url} answered {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise SnsCertificateUnavailable(f"{url}: {error}") from error
    if len(pem) > CERT_MAX_BYTES:
        raise SnsSignatureInvalid(f"SNS signing certificate {url} is too large")
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise SnsSignatureInvalid(f"SNS signing certificate {url} is not a PEM certificate") from error


class SnsSignedMixin:
    """Anymail calls every ``validate_request`` in a webhook view's class chain (its documented
    extension point); listed first, this one runs before Anymail's own checks and any
    subscription confirmation or S3 download."""

    def validate_request(self, request: HttpRequest) -> None:
        # Basic auth first, so an unauthenticated caller never makes us fetch a certificate.
        AnymailBasicAuthMixin.validate_request(self, request)
        try:
            message = json.loads(request.body)
        except (UnicodeDecodeError, ValueError) as error:
            raise SnsSignatureInvalid("SNS request body is not JSON") from error
        if not isinstance(message, dict):
            raise SnsSignatureInvalid("SNS request body is not a JSON object")
        # Before the signature, whose check may fetch a certificate: a foreign topic costs us nothing.
        sns_topic_check(topic_arn=message.get("TopicArn"))
        sns_message_verify(message=message)


class AmazonSESInboundView(SnsSignedMixin, AmazonSESInboundWebhookView):
    """Anymail's SES inbound view, with SNS signatures checked and the exact received bytes kept
    (SNS action: the notification's content; S3 action: the object, as downloaded)."""

    def esp_to_anymail_events(self, ses_event: dict[str, Any], sns_message: dict[str, Any]) -> list:
        action = ses_event.get("receipt", {}).get("action", {}) if isinstance(ses_event, dict) else {}
        if isinstance(action, dict) and action.get("type") == "S3":
            # Before Anymail fetches the object with our credentials.
            ses_bucket_check(bucket=action.get("bucketName"))
        self._s3_bytes = None
        events = super().esp_to_anymail_events(ses_event, sns_message)
        original = self._s3_bytes if self._s3_bytes is not None else _sns_action_content(ses_event)
        for event in events:
            setattr(event.message, ORIGINAL_BYTES_ATTRIBUTE, original)
        return events

    def fetch_s3_chunks(self, bucket_name: str, object_key: str) -> Iterator[bytes]:
        chunks = []
        for chunk in super().fetch_s3_chunks(bucket_name, object_key):
            chunks.append(chunk)
            yield chunk
        self._s3_bytes = b"".join(chunks)


class AmazonSESTrackingView(SnsSignedMixin, AmazonSESTrackingWebhookView):
    """Anymail's SES tracking view, with SNS signatures checked."""


def _sns_action_content(ses_event: dict[str, Any]) -> bytes | None:
    """The message an SNS receipt action carried: exact with Base64 encoding; with UTF-8
    encoding, SES's UTF-8 rendering of it (README, ESP setup notes)."""
    action = ses_event.get("receipt", {}).get("action", {})
    content = ses_event.get("content")
    if action.get("type") != "SNS" or not isinstance(content, str):
        return None
    if action.get("encoding") == "BASE64":
        return base64.b64decode(content)
    return content.encode("utf-8")
