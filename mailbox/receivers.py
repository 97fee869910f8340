"""Anymail's inbound signal → ``inbound_accept``: the one signal receiver in Mailsite.

Anymail's view has authenticated the request and normalised it into an event; here we take the
ESP's original bytes where it sends them (README, "ESP setup notes"), its envelope and verdicts,
and hand them to the front door. Nothing is parsed for the mailbox here: that runs in the task.
"""

import codecs
import hashlib
import json
import math
from collections.abc import Callable
from email import policy
from email.errors import MessageError
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

from anymail.inbound import AnymailInboundMessage
from anymail.signals import AnymailInboundEvent
from django.http import HttpRequest

from delivery.models import InboundReceipt
from delivery.sns import ORIGINAL_BYTES_ATTRIBUTE
from mailbox.services.ingest import inbound_accept

VERDICT_TEXT_LENGTH = 200


def anymail_inbound_received(sender: type, event: AnymailInboundEvent, esp_name: str, **kwargs: Any) -> None:
    """Store one inbound message durably and queue its parse; a retry of it changes nothing.

    Errors propagate on purpose: Anymail's view then answers 500 and the ESP retries later.
    """
    esp = esp_name.lower().replace(" ", "_")
    raw, original = _raw_message(esp, event)
    envelope_sender, envelope_recipients = _envelope(esp, event)
    inbound_accept(
        source=InboundReceipt.Source.ESP_WEBHOOK,
        raw=raw,
        esp=esp,
        # ESPs without an event id: the bytes themselves identify the arrival, so a retry dedupes.
        event_id=_text(event.event_id or "", 255) or f"sha256:{hashlib.sha256(raw).hexdigest()}",
        envelope_sender=envelope_sender,
        envelope_recipients=envelope_recipients,
        verdicts=_verdicts(esp, event),
        metadata={"esp_raw": "original" if original else "rebuilt"},
    )


# --- The message bytes -----------------------------------------------------------------------


def _raw_message(esp: str, event: AnymailInboundEvent) -> tuple[bytes, bool]:
    """The bytes the ESP received, and whether they are its own (``False``: rebuilt by Anymail)."""
    extract = _ORIGINAL_BYTES.get(esp)
    original = extract(event) if extract else None
    if original is not None:
        return original, True
    return _rebuilt_bytes(event.message), False


def _ses_bytes(event: AnymailInboundEvent) -> bytes | None:
    # Kept by delivery.sns.AmazonSESInboundView: the SNS content or the S3 object as downloaded.
    return getattr(event.message, ORIGINAL_BYTES_ATTRIBUTE, None)


def _postmark_bytes(event: AnymailInboundEvent) -> bytes | None:
    raw = event.esp_event.get("RawEmail")
    return raw.encode("utf-8") if isinstance(raw, str) else None


def _form_field_bytes(name: str) -> Callable[[AnymailInboundEvent], bytes | None]:
    """A form field's exact bytes: Django decodes fields as UTF-8, replacing what is not."""

    def extract(event: AnymailInboundEvent) -> bytes | None:
        request: HttpRequest = event.esp_event
        value = request.POST.get(name)
        if value is None:
            return None
        if "\ufffd" not in value and codecs.lookup(request.POST.encoding).name == "utf-8":
            return value.encode("utf-8")  # valid UTF-8 decodes and encodes back byte for byte
        return _form_field_from_body(request, name)

    return extract


def _form_field_from_body(request: HttpRequest, name: str) -> bytes | None:
    """Read the field again from the request body (the inbound routes keep it, mailsite.urls)."""
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/"):
        head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
        form = BytesParser(policy=policy.compat32).parsebytes(head + request.body)
        for part in form.get_payload() if form.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == name:
                return part.get_payload(decode=True)
        return None
    fields = parse_qsl(request.body.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return next((value.encode("latin-1") for key, value in fields if key == name), None)


_ORIGINAL_BYTES: dict[str, Callable[[AnymailInboundEvent], bytes | None]] = {
    "amazon_ses": _ses_bytes,
    "mailgun": _form_field_bytes("body-mime"),  # routes forwarding to .../mailgun/inbound_mime/
    "postmark": _postmark_bytes,  # "Include raw email content in JSON payload"
    "sendgrid": _form_field_bytes("email"),  # "POST the raw, full MIME message"
}


def _rebuilt_bytes(message: AnymailInboundMessage) -> bytes:
    """Anymail's rebuilt message, serialised the same way every time: multipart boundaries it
    left to chance are derived from the content, so a retry stores the same blob."""
    unbounded = [p for p in message.walk() if p.get_content_maintype() == "multipart" and not p.get_boundary()]
    for index, part in enumerate(unbounded):
        part.set_boundary(f"=_mailsite_{index}")
    seed = hashlib.sha256(_serialised(message)).hexdigest()[:32]
    for index, part in enumerate(unbounded):
        part.set_boundary(f"=_{seed}_{index}")
    return _serialised(message)


def _serialised(message: AnymailInboundMessage) -> bytes:
    try:
        return message.as_bytes()
    except (MessageError, LookupError, ValueError, TypeError, IndexError):
        # The modern policy refuses some real-world headers; the legacy one writes them as they are.
        return message.as_bytes(policy=policy.compat32)


# --- Envelope and verdicts --------------------------------------------------------------------


def _envelope(esp: str, event: AnymailInboundEvent) -> tuple[str, list[str]]:
    message = event.message
    if esp == "amazon_ses":
        recipients = event.esp_event.get("receipt", {}).get("recipients") or []
    elif esp == "sendgrid":
        recipients = _json_field(event.esp_event, "envelope").get("to") or []
    elif esp == "mailgun":
        recipients = str(event.esp_event.POST.get("recipient", "")).split(",")
    else:
        recipients = [message.envelope_recipient or ""]
    recipients = [_text(r, 998) for r in recipients if isinstance(r, str) and r.strip()]
    return _text(message.envelope_sender or "", 998), recipients


def _verdicts(esp: str, event: AnymailInboundEvent) -> dict[str, Any]:
    """What the ESP concluded, JSON-safe: ``spam``/``virus`` booleans where it says, a spam score,
    and SPF/DKIM/DMARC results as lowercase words."""
    message = event.message
    verdicts: dict[str, Any] = {}
    if message.spam_detected is not None:
        verdicts["spam"] = bool(message.spam_detected)
    score = _number(message.spam_score)
    if score is not None:
        verdicts["spam_score"] = score
    if esp == "amazon_ses":
        verdicts.update(_ses_verdicts(event.esp_event.get("receipt", {})))
    elif esp == "mailgun":
        verdicts.update(_present(spf=message.get("X-Mailgun-Spf"), dkim=message.get("X-Mailgun-Dkim-Check-Result")))
    elif esp == "sendgrid":
        verdicts.update(_present(spf=event.esp_event.POST.get("SPF"), dkim=event.esp_event.POST.get("dkim")))
    return verdicts


def _ses_verdicts(receipt: dict[str, Any]) -> dict[str, Any]:
    def status(name: str) -> str:
        return str((receipt.get(name) or {}).get("status", "")).lower()

    verdicts: dict[str, Any] = {}
    for key, name in (("spam", "spamVerdict"), ("virus", "virusVerdict")):
        if status(name) in {"pass", "fail"}:
            verdicts[key] = status(name) == "fail"
    verdicts.update(_present(spf=status("spfVerdict"), dkim=status("dkimVerdict"), dmarc=status("dmarcVerdict")))
    return verdicts


def _present(**values: Any) -> dict[str, str]:
    return {key: _text(value, VERDICT_TEXT_LENGTH).lower() for key, value in values.items() if value}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _json_field(request: HttpRequest, name: str) -> dict[str, Any]:
    try:
        value = json.loads(request.POST.get(name, ""))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: Any, limit: int) -> str:
    """A string PostgreSQL accepts: no lone surrogates or NULs from odd headers, bounded."""
    text = str(value).encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return text.strip()[:limit]
