"""Amazon SNS as seen from our side: messages signed with a test key, the certificate served over
HTTP from 127.0.0.1, the way SNS serves its own from sns.<region>.amazonaws.com.

The signing follows Amazon's description, written out here independently of delivery.sns:
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

import base64
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

# The pattern tests put in MAILSITE_SNS_CERT_URL_PATTERN: our local certificate server only.
LOCAL_CERT_URL_PATTERN = r"^http://127\.0\.0\.1:\d+/[^?#]+\.pem$"
TOPIC_ARN = "arn:aws:sns:us-east-1:111111111111:SES_Inbound"


class CertificateServer:
    """A tiny HTTP server on a free 127.0.0.1 port answering fixed routes; counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                status, headers, body = server.routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="sns-cert-server").start()

    def route(self, path: str, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> str:
        self.routes[path] = (status, headers or {}, body)
        return self.base_url + path


def self_signed_certificate(key: rsa.RSAPrivateKey, *, valid_days: int = 2) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=valid_days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


class SnsSigner:
    """Signs SNS messages with a test key whose certificate the local server publishes."""

    SIGNED = {
        "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
        "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    }

    def __init__(self) -> None:
        self.server = CertificateServer()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert_url = self.server.route(
            f"/SimpleNotificationService-{uuid.uuid4().hex}.pem", self_signed_certificate(self.key)
        )

    def sign(
        self,
        message: dict,
        *,
        version: str = "1",
        key: rsa.RSAPrivateKey | None = None,
        cert_url: str | None = None,
    ) -> dict:
        signed = {**message, "SignatureVersion": version, "SigningCertURL": cert_url or self.cert_url}
        canonical = "".join(f"{name}\n{signed[name]}\n" for name in self.SIGNED[signed["Type"]] if name in signed)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = (key or self.key).sign(canonical.encode(), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def notification(self, ses_event: dict, *, message_id: str | None = None, **sign_options) -> dict:
        """An SNS Notification carrying an SES receipt event, as SNS posts it."""
        message = {
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": TOPIC_ARN,
            "Subject": "Amazon SES Email Receipt Notification",
            "Message": json.dumps(ses_event),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + TOPIC_ARN,
        }
        return self.sign(message, **sign_options)


@cache
def sns_signer() -> SnsSigner:
    """One key and one certificate server per test run (a 2048-bit key takes a moment)."""
    return SnsSigner()


def sns_post_kwargs(message: dict, *, auth: str | None) -> dict:
    """Keyword arguments for Django's test client, as SNS sends the request."""
    kwargs = {
        "data": json.dumps(message),
        "content_type": "text/plain; charset=UTF-8",
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": message["Type"],
        "HTTP_X_AMZ_SNS_MESSAGE_ID": message["MessageId"],
        "HTTP_X_AMZ_SNS_TOPIC_ARN": message["TopicArn"],
    }
    if auth:
        kwargs["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return kwargs
