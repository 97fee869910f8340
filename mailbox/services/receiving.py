"""Turning a stored inbound receipt into messages in every local recipient's mailbox."""

from dataclasses import dataclass

import structlog
from django.db import transaction

from delivery.models import InboundReceipt
from delivery.selectors import blob_read
from delivery.services import inbound_receipt_finish, inbound_receipt_start_attempt
from delivery.tracking import bounce_receipt_apply
from mailbox.models import Label, Mailbox
from mailbox.parsing import ParsedMessage, parse_message
from mailbox.selectors import mailboxes_for_addresses
from mailbox.services.delivering import message_deliver
from mailsite.events import domain_event_record
from mailsite.models import DomainEvent

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReceiptOutcome:
    status: str
    delivered: int = 0
    unknown_recipients: tuple[str, ...] = ()


def receipt_process(*, receipt_id: int) -> ReceiptOutcome | None:
    """Parse a stored receipt and deliver one copy into each local mailbox among its recipients.

    Idempotent: a receipt no longer waiting is left alone, and each copy is unique
    per (mailbox, blob). Transient errors (database, storage) propagate so the caller retries;
    the raw bytes are never touched. Returns ``None`` when the receipt no longer exists.
    """
    receipt = inbound_receipt_start_attempt(receipt_id=receipt_id)
    if receipt is None:
        return None
    if receipt.status != InboundReceipt.Status.RECEIVED:
        # Parsed, quarantined or failed: final until staff reprocess it.
        return ReceiptOutcome(receipt.status)
    parsed = parse_message(blob_read(blob=receipt.blob), received_at=receipt.received_at)
    if parsed.is_malformed:
        return _quarantine(receipt, "no message header found: not an RFC 5322 message")
    recipients = _recipients(receipt, parsed)
    bounces = bounce_receipt_apply(receipt_id=receipt.id, envelope_recipients=recipients, report=parsed.report)
    mailboxes, unknown = mailboxes_for_addresses(addresses=recipients)
    if not mailboxes and bounces:  # a bounce to a VERP return path: it lives on the delivery
        inbound_receipt_finish(receipt=receipt, status=InboundReceipt.Status.PARSED, error="bounce report applied")
        return ReceiptOutcome(InboundReceipt.Status.PARSED)
    if not mailboxes:
        return _quarantine(receipt, "no local recipient" + (f": unknown {', '.join(unknown)}" if unknown else ""))
    for mailbox in mailboxes:
        _deliver_copy(receipt, parsed, mailbox)
    note = f"unknown local recipients: {', '.join(unknown)}" if unknown else ""
    inbound_receipt_finish(receipt=receipt, status=InboundReceipt.Status.PARSED, error=note)
    logger.info("inbound.parsed", receipt_id=receipt.id, copies=len(mailboxes), unknown=unknown)
    return ReceiptOutcome(InboundReceipt.Status.PARSED, len(mailboxes), tuple(unknown))


def receipt_fail(*, receipt_id: int, error: str) -> None:
    """Mark a receipt failed after a permanent error; staff can reprocess it from admin."""
    receipt = InboundReceipt.objects.filter(pk=receipt_id).first()
    if receipt is not None:
        inbound_receipt_finish(receipt=receipt, status=InboundReceipt.Status.FAILED, error=error)
        logger.error("inbound.failed", receipt_id=receipt_id, error=error)


def _recipients(receipt: InboundReceipt, parsed: ParsedMessage) -> list[str]:
    """The envelope recipients; without an envelope, the addressees the headers name (Bcc copies
    then reach only mailboxes the headers show)."""
    if receipt.envelope_recipients:
        return list(receipt.envelope_recipients)
    roles = ("to", "cc", "delivered_to")
    return [address.address for role in roles for address in parsed.addresses.get(role, [])]


@transaction.atomic
def _deliver_copy(receipt: InboundReceipt, parsed: ParsedMessage, mailbox: Mailbox) -> None:
    """One transaction per mailbox copy."""
    hints = receipt.metadata
    message_deliver(
        mailbox=mailbox,
        blob=receipt.blob,
        parsed=parsed,
        source_tag=_source_tag(receipt),
        # An import may file a message under no system label at all (archived): an empty list counts.
        label_roles=tuple(hints["label_roles"] if "label_roles" in hints else [_folder(receipt, parsed)]),
        user_labels=tuple(hints.get("labels", ())),
        is_read=bool(hints.get("is_read", False)),
        is_starred=bool(hints.get("is_starred", False)),
        receipt=receipt,
        received_at=receipt.received_at,
    )


def _folder(receipt: InboundReceipt, parsed: ParsedMessage) -> str:
    """Baseline spam routing: the ESP's verdict, or a DMARC failure the authenticating edge saw."""
    if receipt.verdicts.get("spam") is True or receipt.verdicts.get("virus") is True:
        return Label.Role.SPAM
    if parsed.authentication.get("dmarc") == "fail":
        return Label.Role.SPAM
    return Label.Role.INBOX


def _source_tag(receipt: InboundReceipt) -> str:
    return f"esp:{receipt.esp}" if receipt.esp else receipt.source


@transaction.atomic
def _quarantine(receipt: InboundReceipt, reason: str) -> ReceiptOutcome:
    inbound_receipt_finish(receipt=receipt, status=InboundReceipt.Status.QUARANTINED, error=reason)
    domain_event_record(
        event_type=DomainEvent.Type.RECEIPT_QUARANTINED,
        subject_type="receipt",
        subject_id=receipt.id,
        source_tag=_source_tag(receipt),
        payload={"reason": reason},
    )
    logger.warning("inbound.quarantined", receipt_id=receipt.id, reason=reason)
    return ReceiptOutcome(InboundReceipt.Status.QUARANTINED)
