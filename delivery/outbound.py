"""Writes of outbound transport: queue, claim, hand off, record the outcome, retry or dead-letter.

The delivery guarantee (ARCHITECTURE.md, "Life of an outbound message"):

- **At most once per attempt id.** A worker claims due deliveries with ``SELECT … FOR UPDATE SKIP
  LOCKED`` and commits their move to ``sending`` with a fresh ``attempt_id`` *before* any network
  call. Only a claim starts an attempt, and only rows in ``queued``/``scheduled`` can be claimed, so
  a redelivered task, a duplicate task or the sweeper finds the row ``sending`` and does nothing.
- **A crash mid-send is never resent automatically.** A row left in ``sending`` past
  ``MAILSITE_OUTBOUND_SENDING_LEASE`` is dead-lettered with the attempt id and "outcome unknown";
  staff decide from admin whether to retry (a new attempt id). The price: a message whose worker
  died after claiming but before the hand-off waits for staff instead of leaving by itself.
- **Transient errors retry.** A refusal with a 4xx SMTP code, a 5xx/429 from an ESP API or a
  dropped connection puts the row back in ``queued`` with a back-off. A connection that drops
  after the message data went out but before the server's reply is ambiguous in SMTP itself
  (RFC 1047): that recipient may then receive two copies, as with any mail server.
"""

import random
import re
import smtplib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from email.policy import compat32, default
from typing import Any

import structlog
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.core.mail.backends import console as console_backend
from django.core.mail.backends import smtp as smtp_backend
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from delivery.models import DeliveryEvent, InboundReceipt, OutboundDelivery
from delivery.selectors import blob_read
from delivery.services import inbound_receipt_create
from delivery.tracking import deliveries_record_sent, delivery_status_change
from mailsite.celery import app as celery_app

logger = structlog.get_logger(__name__)

WAITING = (OutboundDelivery.Status.QUEUED, OutboundDelivery.Status.SCHEDULED)
# The parse task of the ingest path, queued by name: ``delivery`` never imports ``mailbox``.
LOCAL_PARSE_TASK = "mailbox.receipt_process"
# Queued by name too: the task module imports this one.
SEND_TASK = "delivery.outbound_send"


class PermanentSendError(Exception):
    """The relay or ESP refused this recipient for good: retrying would not help."""


@dataclass(frozen=True)
class DeliveryRequest:
    recipient: str
    is_local: bool


@dataclass(frozen=True)
class SendOutcome:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    dead: int = 0


def outbound_deliveries_create(
    *,
    mailbox_id: int,
    message_id: int,
    rfc_message_id: str,
    blob_id: int,
    envelope_domain: str,
    from_address: str,
    recipients: Iterable[DeliveryRequest],
    source_tag: str,
    send_after: datetime,
    scheduled: bool,
) -> list[OutboundDelivery]:
    """One queued (or scheduled) delivery per recipient, with its ``queued`` event. The caller's
    transaction commits them; it then queues the send (``outbound_send_queue_on_commit``)."""
    status = OutboundDelivery.Status.SCHEDULED if scheduled else OutboundDelivery.Status.QUEUED
    deliveries = OutboundDelivery.objects.bulk_create(
        OutboundDelivery(
            mailbox_id=mailbox_id,
            message_id=message_id,
            rfc_message_id=rfc_message_id,
            blob_id=blob_id,
            envelope_sender=from_address,
            recipient=request.recipient,
            is_local=request.is_local,
            status=status,
            source_tag=source_tag,
            send_after=send_after,
            enqueued_at=None if scheduled or _runs_eagerly() else send_after,
        )
        for request in recipients
    )
    if settings.MAILSITE_OUTBOUND_VERP:
        for delivery in deliveries:
            delivery.envelope_sender = verp_address(delivery_id=delivery.id, domain=envelope_domain)
        OutboundDelivery.objects.bulk_update(deliveries, ["envelope_sender"])
    now = timezone.now()
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(mailbox_id=mailbox_id, delivery=d, event_type=DeliveryEvent.Type.QUEUED, occurred_at=now)
        for d in deliveries
    )
    return deliveries


def _runs_eagerly() -> bool:
    """No broker (the embedded mode): a queued task runs at once, ignoring its countdown, so it
    finds nothing due yet. The row then stays unleased, for ``runoutbound`` to release when due
    instead of a re-queue lease later."""
    return bool(celery_app.conf.task_always_eager)


def verp_address(*, delivery_id: int, domain: str) -> str:
    return f"{settings.MAILSITE_VERP_LOCAL_PART}+{delivery_id}@{domain}"


def outbound_send_queue_on_commit(*, delivery_ids: list[int], countdown: float) -> None:
    """Queue the send of ``delivery_ids`` after the transaction commits, in batches. A broker
    outage is logged, not raised: the release sweeper queues them after the re-queue lease."""
    size = settings.MAILSITE_OUTBOUND_BATCH_SIZE
    for start in range(0, len(delivery_ids), size):
        batch = delivery_ids[start : start + size]

        def queue_send(batch: list[int] = batch) -> None:
            celery_app.signature(SEND_TASK, args=(batch,)).apply_async(countdown=max(0.0, countdown))

        transaction.on_commit(queue_send, robust=True)


@transaction.atomic
def outbound_cancel(*, mailbox_id: int, message_id: int) -> int:
    """Cancel the deliveries of a message that have not been claimed yet (undo send, cancel a
    scheduled send). Returns how many were cancelled; 0 when it is too late."""
    waiting = OutboundDelivery.objects.select_for_update().filter(
        mailbox_id=mailbox_id, message_id=message_id, status__in=WAITING
    )
    deliveries = list(waiting)
    for delivery in deliveries:
        delivery_status_change(delivery=delivery, status=OutboundDelivery.Status.CANCELLED, publish=False)
    return len(deliveries)


def outbound_release_due(*, now: datetime | None = None, limit: int = 5000) -> list[int]:
    """Mark due deliveries whose task is not (or no longer) on its way as queued now and return
    their ids, for the caller to queue once this has committed.

    Due: send later whose time has come, retries whose back-off is over, and deliveries whose task
    was lost (broker down at commit, worker gone before it claimed them).
    """
    now = now or timezone.now()
    requeue_before = now - settings.MAILSITE_OUTBOUND_REQUEUE_AFTER
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE delivery_outbounddelivery SET enqueued_at = %s
            WHERE id IN (
                SELECT id FROM delivery_outbounddelivery
                WHERE status IN ('queued', 'scheduled') AND send_after <= %s
                  AND (enqueued_at IS NULL OR enqueued_at < %s)
                ORDER BY send_after LIMIT %s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
            """,
            [now, now, requeue_before, limit],
        )
        return sorted(row[0] for row in cursor.fetchall())


def outbound_claim(*, delivery_ids: list[int]) -> list[OutboundDelivery]:
    """Start one attempt on each of ``delivery_ids`` that is due and unclaimed, committed before
    this returns, so the attempt is on record before anything goes on the wire. Rows another
    transaction holds (a cancel, a concurrent claim) are skipped, not waited for."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE delivery_outbounddelivery
            SET status = 'sending', attempt_id = gen_random_uuid(), attempts = attempts + 1, updated_at = %s
            WHERE id IN (
                SELECT id FROM delivery_outbounddelivery
                WHERE id = ANY(%s) AND status IN ('queued', 'scheduled') AND send_after <= %s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
            """,
            [timezone.now(), list(delivery_ids), timezone.now()],
        )
        claimed = [row[0] for row in cursor.fetchall()]
    return list(OutboundDelivery.objects.filter(pk__in=claimed).select_related("blob").order_by("id"))


def outbound_send(*, delivery_ids: list[int]) -> SendOutcome:
    """Claim and hand off a batch: local recipients through the ingest path, the others over a
    few reused connections to the configured relay or ESP; then record the outcomes."""
    claimed = outbound_claim(delivery_ids=delivery_ids)
    outcomes: list[str] = []
    for delivery in (d for d in claimed if d.is_local):
        outcomes.append(_deliver_locally(delivery))
    remote = [d for d in claimed if not d.is_local]
    if remote:
        outcomes += _hand_off_all(remote)
    return SendOutcome(
        sent=outcomes.count("sent"),
        retried=outcomes.count("retried"),
        failed=outcomes.count("failed"),
        dead=outcomes.count("dead"),
    )


def _deliver_locally(delivery: OutboundDelivery) -> str:
    """Store a receipt for the local mailbox and queue its parse: the same path as inbound mail.
    The receipt's event id is the delivery's, so a second attempt doubles nothing."""
    with transaction.atomic():
        stored = inbound_receipt_create(
            source=InboundReceipt.Source.LOCAL,
            raw=blob_read(blob=delivery.blob),
            event_id=f"outbound:{delivery.id}",
            envelope_sender=delivery.envelope_sender,
            envelope_recipients=[delivery.recipient],
        )
        delivery.esp, delivery.esp_message_id = "local", f"receipt:{stored.receipt.id}"
        delivery.handed_off_at, delivery.last_error = timezone.now(), "delivered locally"
        deliveries_record_sent(deliveries=[delivery])
        if stored.created:
            transaction.on_commit(_parse_queuer(stored.receipt.id), robust=True)
    return "sent"


def _parse_queuer(receipt_id: int) -> Callable[[], None]:
    """A named on-commit callback: Django logs a robust callback's failure by its name."""

    def queue_local_parse() -> None:
        celery_app.signature(LOCAL_PARSE_TASK, args=(receipt_id,)).delay()

    return queue_local_parse


def _hand_off_all(deliveries: list[OutboundDelivery]) -> list[str]:
    """Send the batch over ``MAILSITE_OUTBOUND_CONNECTIONS`` connections at once (each reused for
    its share; a failed send closes it, the next reopens), then record every outcome: the
    hand-offs in one transaction, each failure as a retry, a failure or a dead letter. Each message
    is read and prepared once for the batch, never once per recipient.

    A worker dying between a hand-off and that record leaves the delivery ``sending``: the
    sweeper dead-letters it after the lease, never resends it (at most once per attempt)."""
    fields = not issubclass(import_string(settings.EMAIL_BACKEND), MIME_ONLY_BACKENDS)
    templates: dict[int, MessageTemplate] = {}
    for delivery in deliveries:
        if delivery.blob_id not in templates:
            templates[delivery.blob_id] = message_template(raw=blob_read(blob=delivery.blob), fields=fields)
    lanes = max(1, min(settings.MAILSITE_OUTBOUND_CONNECTIONS, len(deliveries)))
    shares = [deliveries[lane::lanes] for lane in range(lanes)]
    if lanes == 1:
        results = _hand_off_share(shares[0], templates)
    else:
        # Threads only talk to the relay or ESP (no database): the waits for its answers overlap.
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="outbound") as pool:
            results = [result for share in pool.map(_hand_off_share, shares, [templates] * lanes) for result in share]
    handed_off = [delivery for delivery, error in results if error is None]
    outcomes = ["sent"] * len(handed_off)
    try:
        outcomes += [_record_failure(delivery, error) for delivery, error in results if error is not None]
    finally:
        if handed_off:
            deliveries_record_sent(deliveries=handed_off)
            logger.info("outbound.sent", delivery_ids=[d.id for d in handed_off], esp=handed_off[0].esp)
    return outcomes


def _hand_off_share(
    deliveries: list[OutboundDelivery], templates: dict[int, "MessageTemplate"]
) -> list[tuple[OutboundDelivery, Exception | None]]:
    """One connection's share of a batch: each delivery with ``None`` once accepted, or the error."""
    backend = get_connection(fail_silently=False)
    try:
        return [(delivery, _hand_off(backend, delivery, templates[delivery.blob_id])) for delivery in deliveries]
    finally:
        backend.close()


def _hand_off(backend: Any, delivery: OutboundDelivery, template: "MessageTemplate") -> Exception | None:
    """Hand one delivery to the backend: ``None`` once accepted (its ESP fields set, recorded by
    the caller with the batch), else the error, for the caller to record."""
    message = raw_email_message(template=template, delivery=delivery)
    try:
        backend.open()
        backend.send_messages([message])
        status = _anymail_recipient_status(message, delivery.recipient)
        if status in ("rejected", "invalid", "failed"):
            raise PermanentSendError(f"the ESP answered {status!r} for this recipient")
    except Exception as error:  # noqa: BLE001 - every failure is classified and recorded
        backend.close()
        return error
    delivery.esp = _backend_name(backend)
    delivery.esp_message_id = _anymail_message_id(message)
    delivery.handed_off_at = timezone.now()
    delivery.last_error = status or "accepted"  # the server's answer, kept for the sent event
    return None


class StoredBytes:
    """The stored message as a MIME backend writes it: the bytes themselves, with the line endings
    the backend asks for (Django's SMTP backend CRLF, its file backend LF), never parsed again.
    One per message in a batch, shared by every recipient's copy; the serialisation is cached."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._by_linesep: dict[str, bytes] = {}

    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:
        if linesep not in self._by_linesep:
            self._by_linesep[linesep] = _LINE_END.sub(linesep.encode(), self._raw)
        return self._by_linesep[linesep]

    def get_charset(self) -> None:
        return None  # the bytes carry their own charsets (Django's file backend asks)


_LINE_END = re.compile(rb"\r\n|\r|\n")


class RawEmailMessage(EmailMultiAlternatives):
    """A Django email whose MIME is the bytes we stored, for backends that send MIME (SMTP, file,
    Amazon SES). Field-based ESP backends read the subject, bodies and attachments instead, which
    ``raw_email_message`` fills from the same bytes."""

    raw: bytes = b""
    stored: StoredBytes | None = None

    def message(self, **kwargs: Any) -> Message | StoredBytes:  # type: ignore[override]
        if self.stored is not None:
            return self.stored
        # A backend that edits the MIME (Anymail's SES adds headers) gets its own parsed copy;
        # compat32 keeps the header text as written, so the bytes serialise back as stored.
        return message_from_bytes(self.raw, _class=StoredMime, policy=compat32)


class StoredMime(Message):
    """Takes ``linesep`` like Django's own MIME classes: its SMTP backend asks for CRLF."""

    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:  # type: ignore[override]
        return super().as_bytes(unixfrom, policy=self.policy.clone(linesep=linesep))


# Django's SMTP and file/console backends read the envelope and serialise ``message()``, nothing
# else: they get ``StoredBytes`` and the message is not parsed into fields at all.
MIME_ONLY_BACKENDS = (smtp_backend.EmailBackend, console_backend.EmailBackend)


@dataclass(frozen=True)
class MessageTemplate:
    """What every recipient's copy of one stored message shares, prepared once per batch."""

    raw: bytes
    subject: str = ""
    text: str = ""
    html: str | None = None
    from_email: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)
    stored: StoredBytes | None = None


def message_template(*, raw: bytes, fields: bool = True) -> MessageTemplate:
    """``raw`` ready to go to every recipient: parsed into the fields an ESP's API takes, or, for
    a backend that sends MIME only (``fields=False``), kept as bytes."""
    if not fields:
        return MessageTemplate(raw=raw, stored=StoredBytes(raw))
    parsed = message_from_bytes(raw, policy=default)
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    return MessageTemplate(
        raw=raw,
        subject=str(parsed.get("Subject", "")),
        text=text_part.get_content() if text_part is not None else "",
        html=html_part.get_content() if html_part is not None else None,
        from_email=str(parsed.get("From", "")),
        headers=_threading_headers(parsed),
        attachments=[
            (part.get_filename() or "attachment", part.get_payload(decode=True), part.get_content_type())
            for part in parsed.iter_attachments()
        ],
    )


def raw_email_message(*, template: MessageTemplate, delivery: OutboundDelivery) -> RawEmailMessage:
    """The Django message that carries the stored bytes to one recipient (envelope: that recipient
    only). MIME backends send the stored headers (the real To and Cc); a field-based ESP addresses
    the copy to its recipient alone, so there the To line shows only them."""
    message = RawEmailMessage(
        subject=template.subject,
        body=template.text,
        from_email=template.from_email,
        to=[delivery.recipient],
        headers={**template.headers, "X-Mailsite-Delivery": str(delivery.id)},
    )
    message.raw, message.stored = template.raw, template.stored
    if template.html is not None:
        message.attach_alternative(template.html, "text/html")
    for filename, content, content_type in template.attachments:
        message.attach(filename, content, content_type)
    if not settings.EMAIL_BACKEND.startswith("anymail."):
        # SMTP/file: MAIL FROM, the VERP return path (or the sender's address); From is in raw.
        message.from_email = delivery.envelope_sender
    message.tags = [delivery.source_tag or "mailsite"]
    message.metadata = {"delivery_id": str(delivery.id), "attempt_id": str(delivery.attempt_id)}
    return message


def _threading_headers(parsed: Any) -> dict[str, str]:
    return {name: str(parsed[name]) for name in ("Message-ID", "Date", "In-Reply-To", "References") if parsed.get(name)}


def _anymail_recipient_status(message: EmailMessage, recipient: str) -> str:
    status = getattr(message, "anymail_status", None)
    if status is None or not status.recipients:
        return ""
    found = status.recipients.get(recipient) or next(iter(status.recipients.values()))
    return str(found.status or "")


def _anymail_message_id(message: EmailMessage) -> str:
    status = getattr(message, "anymail_status", None)
    if status is None or status.message_id is None:
        return ""
    return str(status.message_id)[:255]


def _backend_name(backend: Any) -> str:
    """Anymail's ESP name as its webhooks report it (``amazon_ses``), else the Django backend's."""
    name = getattr(backend, "esp_name", "") or type(backend).__module__.rsplit(".", 1)[-1]
    return str(name).lower().replace(" ", "_")[:50]


def _record_failure(delivery: OutboundDelivery, error: Exception) -> str:
    reason = failure_reason(error)
    delivery.last_error = reason
    if is_permanent(error):
        delivery_status_change(
            delivery=delivery, status=OutboundDelivery.Status.FAILED, mta_response=reason, extra_fields=("last_error",)
        )
        logger.warning("outbound.failed", delivery_id=delivery.id, reason=reason)
        return "failed"
    if delivery.attempts >= settings.MAILSITE_OUTBOUND_MAX_ATTEMPTS:
        delivery.last_error = f"gave up after {delivery.attempts} attempts: {reason}"
        delivery_status_change(
            delivery=delivery, status=OutboundDelivery.Status.DEAD, mta_response=reason, extra_fields=("last_error",)
        )
        logger.error("outbound.dead", delivery_id=delivery.id, reason=reason)
        return "dead"
    delivery.send_after = timezone.now() + retry_backoff(attempts=delivery.attempts)
    delivery.enqueued_at = None
    delivery_status_change(
        delivery=delivery,
        status=OutboundDelivery.Status.QUEUED,
        event_type=DeliveryEvent.Type.DEFERRED,
        mta_response=reason,
        extra_fields=("last_error", "send_after", "enqueued_at"),
    )
    logger.warning("outbound.retry", delivery_id=delivery.id, reason=reason, retry_at=delivery.send_after.isoformat())
    return "retried"


def retry_backoff(*, attempts: int) -> timedelta:
    """Exponential back-off with jitter: about 4 s, 8 s, 16 s … after each failed attempt, capped."""
    ceiling = min(settings.MAILSITE_OUTBOUND_BACKOFF_CAP_SECONDS, 2 ** (attempts + 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter, not security


def is_permanent(error: Exception) -> bool:
    """Whether another attempt cannot succeed: 5xx SMTP refusals, 4xx ESP API answers (but 429),
    an ESP refusing every recipient, or our own permanent verdict."""
    if isinstance(error, PermanentSendError | AnymailRecipientsRefused):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    if isinstance(error, AnymailAPIError):
        code = getattr(error, "status_code", None)
        return code is not None and 400 <= code < 500 and code not in (408, 429)
    # Dropped connections, timeouts, refused connections, other ESP errors: worth another attempt.
    return False


def failure_reason(error: Exception) -> str:
    """The server's words, for "Not delivered to X: reason"."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        parts = [f"{code} {_text(message)}" for code, message in error.recipients.values()]
        return "; ".join(parts)[:2000]
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}"[:2000]
    return (str(error) or type(error).__name__)[:2000]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def outbound_sweep_interrupted(*, now: datetime | None = None) -> list[int]:
    """Dead-letter attempts claimed longer ago than the lease: their worker died mid-send. Never
    resent by itself (it may have left); staff retry from admin with a new attempt id."""
    cutoff = (now or timezone.now()) - settings.MAILSITE_OUTBOUND_SENDING_LEASE
    swept = []
    with transaction.atomic():
        stale = OutboundDelivery.objects.select_for_update(skip_locked=True).filter(
            status=OutboundDelivery.Status.SENDING, updated_at__lt=cutoff
        )
        for delivery in stale:
            delivery.last_error = (
                f"attempt {delivery.attempt_id} was interrupted mid-send (its worker stopped); it may or may "
                "not have reached the relay, so it is not resent automatically: retry it from admin to send again"
            )
            delivery_status_change(
                delivery=delivery,
                status=OutboundDelivery.Status.DEAD,
                mta_response=delivery.last_error,
                extra_fields=("last_error",),
            )
            swept.append(delivery.id)
    return swept


@transaction.atomic
def outbound_retry(*, delivery_ids: list[int]) -> list[int]:
    """Staff: send failed, dead-lettered or interrupted deliveries again, as a new attempt. Returns
    the ids put back in line (queued once this commits)."""
    retryable = (OutboundDelivery.Status.DEAD, OutboundDelivery.Status.FAILED, OutboundDelivery.Status.SENDING)
    deliveries = list(OutboundDelivery.objects.select_for_update().filter(pk__in=delivery_ids, status__in=retryable))
    now = timezone.now()
    for delivery in deliveries:
        delivery.send_after = now
        delivery.enqueued_at = now
        delivery.attempts = 0
        delivery_status_change(
            delivery=delivery,
            status=OutboundDelivery.Status.QUEUED,
            event_type=DeliveryEvent.Type.QUEUED,
            description="retried by staff",
            extra_fields=("send_after", "enqueued_at", "attempts"),
        )
    ids = [d.id for d in deliveries]
    outbound_send_queue_on_commit(delivery_ids=ids, countdown=0)
    return ids
