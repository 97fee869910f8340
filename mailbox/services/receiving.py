"""Turning a stored inbound receipt into messages in every local recipient's mailbox."""

from dataclasses import dataclass, field

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from delivery.metrics import INBOUND_FAILED, INBOUND_PARSED, INBOUND_QUARANTINED
from delivery.models import InboundReceipt
from delivery.selectors import blob_read, inbound_receipts_waiting
from delivery.services import (
    inbound_receipt_finish,
    inbound_receipt_start_attempt,
    inbound_receipts_claim,
    inbound_receipts_finish,
    inbound_receipts_lock,
)
from delivery.tracking import bounce_receipt_apply
from mailbox.models import Label, Mailbox, Message
from mailbox.parsing import ParsedMessage, parse_message
from mailbox.selectors import mailboxes_for_addresses
from mailbox.services.delivering import (
    Copy,
    DeferredRows,
    copies_deliver,
    mailbox_deliveries_lock,
    message_deliver,
)
from mailbox.services.flags import messages_label_add
from mailsite.models import DomainEvent

logger = structlog.get_logger(__name__)
BOUNCE_APPLIED = "bounce report applied"


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
    with structlog.contextvars.bound_contextvars(correlation_id=receipt.correlation_id):
        return _receipt_process(receipt)


def _receipt_process(receipt: InboundReceipt) -> ReceiptOutcome:
    if receipt.status != InboundReceipt.Status.RECEIVED:
        # Parsed, quarantined or failed: final until staff reprocess it.
        return ReceiptOutcome(receipt.status)
    parsed = _parse(receipt)
    recipients = [] if parsed.is_malformed else _recipients(receipt, parsed)
    bounced = _bounce_apply(receipt, parsed, recipients)
    mailboxes, unknown = mailboxes_for_addresses(addresses=recipients) if recipients else ([], [])
    if bounced and not mailboxes:  # a bounce to a VERP return path: it lives on the delivery
        inbound_receipt_finish(receipt=receipt, status=InboundReceipt.Status.PARSED, error=BOUNCE_APPLIED)
        INBOUND_PARSED.inc()
        return ReceiptOutcome(InboundReceipt.Status.PARSED)
    reason = _quarantine_reason(parsed, mailboxes, unknown)
    if reason:
        return _quarantine(receipt, reason, unknown)
    for mailbox in mailboxes:
        _deliver_copy(receipt, parsed, mailbox)
    inbound_receipt_finish(receipt=receipt, status=InboundReceipt.Status.PARSED, unknown_recipients=unknown)
    INBOUND_PARSED.inc()
    logger.info("inbound.parsed", receipt_id=receipt.id, copies=len(mailboxes), unknown=unknown)
    return ReceiptOutcome(InboundReceipt.Status.PARSED, len(mailboxes), tuple(unknown))


@dataclass
class BatchOutcome:
    """What a batch did: receipts finished in it, and those handed back, still waiting, because it
    failed or because another transaction held them when it locked its receipts."""

    finished: list[int] = field(default_factory=list)
    handed_back: list[int] = field(default_factory=list)
    error: str = ""


def receipts_process_batch(*, receipt_ids: list[int], fill_to: int = 0) -> BatchOutcome:
    """Process many waiting receipts in one transaction: the bulk import's and the busy worker's path.

    Claims the waiting receipts among ``receipt_ids`` (plus, up to ``fill_to``, others never tried),
    skipping receipts another worker holds. The copies are delivered as one batch (``copies_deliver``:
    a few statements for the batch, each copy placed as if the earlier ones were delivered one by
    one). If anything fails, the whole batch rolls back — nothing half-written stays — and
    its receipts come back in ``handed_back``, still waiting, for the caller to process one by one
    (``receipt_process``, one transaction per copy), so one bad message never loses or blocks the others.
    """
    claimed_ids: list[int] = []
    try:
        claimed_ids = inbound_receipts_claim(receipt_ids=receipt_ids, fill_to=fill_to)
        if not claimed_ids:  # done already, by a worker that took it along: nothing to open
            return BatchOutcome()
        with transaction.atomic():
            claimed = inbound_receipts_lock(receipt_ids=claimed_ids)
            _batch_deliver(claimed)
    except Exception as error:  # noqa: BLE001 - any failure: the caller retries one receipt at a time
        handed_back = sorted({*claimed_ids, *receipt_ids})
        logger.warning("inbound.batch_failed", receipts=len(handed_back), error=repr(error))
        return BatchOutcome(handed_back=handed_back, error=repr(error))
    quarantined = sum(1 for r in claimed if r.status == InboundReceipt.Status.QUARANTINED)
    INBOUND_QUARANTINED.inc(quarantined)
    INBOUND_PARSED.inc(len(claimed) - quarantined)
    correlation_ids = sorted({r.correlation_id for r in claimed})
    logger.info("inbound.batch_parsed", receipts=len(claimed), quarantined=quarantined, correlation_ids=correlation_ids)
    finished = [r.id for r in claimed]
    return BatchOutcome(finished=finished, handed_back=_held_elsewhere(claimed_ids, finished))


def _held_elsewhere(claimed_ids: list[int], finished: list[int]) -> list[int]:
    """Receipts this batch claimed but found held by another transaction when it locked them (a
    concurrent claim that looked at them, or a batch that has them as its own): those still
    waiting go on alone, as after a failed batch, rather than wait for the sweeper."""
    skipped = sorted(set(claimed_ids) - set(finished))
    return inbound_receipts_waiting(receipt_ids=skipped) if skipped else []


def _batch_deliver(receipts: list[InboundReceipt]) -> None:
    routes: dict[tuple[str, ...], tuple[list[Mailbox], list[str]]] = {}
    plan: list[tuple[InboundReceipt, ParsedMessage, list[Mailbox], list[str]]] = []
    for receipt in receipts:
        parsed = _parse(receipt)
        key = tuple(sorted(set(_recipients(receipt, parsed))))
        if key not in routes:
            routes[key] = mailboxes_for_addresses(addresses=list(key))
        plan.append((receipt, parsed, *routes[key]))
    mailbox_ids = [m.id for _, parsed, mailboxes, _ in plan if not parsed.is_malformed for m in mailboxes]
    mailbox_deliveries_lock(mailbox_ids=mailbox_ids, exclusive=True)
    present = _copies_present(receipts)  # read under the locks: no delivery of these is under way
    deferred = DeferredRows()
    copies = _batch_copies(plan, present, deferred)
    copies_deliver(copies=copies, deferred=deferred)
    inbound_receipts_finish(receipts=receipts)


def _batch_copies(
    plan: list[tuple[InboundReceipt, ParsedMessage, list[Mailbox], list[str]]],
    present: set[tuple[int, int]],
    deferred: DeferredRows,
) -> list[tuple[Mailbox, Copy]]:
    """Settle each receipt of the batch (bounce, quarantine, parsed) and list the copies to deliver,
    in order; quarantine events wait in ``deferred``."""
    copies: list[tuple[Mailbox, Copy]] = []
    for receipt, parsed, mailboxes, unknown in plan:
        recipients = [] if parsed.is_malformed else _recipients(receipt, parsed)
        if _bounce_apply(receipt, parsed, recipients) and not mailboxes:
            receipt.status, receipt.last_error = InboundReceipt.Status.PARSED, BOUNCE_APPLIED
            continue
        reason = _quarantine_reason(parsed, mailboxes, unknown)
        receipt.unknown_recipients = unknown
        if reason:
            receipt.status, receipt.last_error = InboundReceipt.Status.QUARANTINED, reason
            deferred.events.append(_quarantine_event(receipt, reason))
            logger.warning(
                "inbound.quarantined", receipt_id=receipt.id, correlation_id=receipt.correlation_id, reason=reason
            )
            continue
        for mailbox in mailboxes:
            if (mailbox.id, receipt.blob_id) in present:
                # An earlier arrival of the same bytes already put it there; or the mailbox sent it.
                _sent_to_self_file(receipt, mailbox)
                continue
            copies.append((mailbox, _copy(receipt, parsed)))
            present.add((mailbox.id, receipt.blob_id))
        receipt.status, receipt.last_error = InboundReceipt.Status.PARSED, ""
    return copies


def _bounce_apply(receipt: InboundReceipt, parsed: ParsedMessage, recipients: list[str]) -> bool:
    """Apply a delivery status report on mail we sent to its outbound deliveries (matched by VERP
    return path or original Message-ID); ``True`` if it reported on any."""
    if parsed.is_malformed or parsed.report is None:
        return False
    return bounce_receipt_apply(receipt_id=receipt.id, envelope_recipients=recipients, report=parsed.report) > 0


def _parse(receipt: InboundReceipt) -> ParsedMessage:
    raw = blob_read(blob=receipt.blob)
    return parse_message(raw, received_at=receipt.received_at, authserv_ids=settings.MAILSITE_AUTHSERV_IDS)


def _copies_present(receipts: list[InboundReceipt]) -> set[tuple[int, int]]:
    """(mailbox id, blob id) of the copies of these receipts' bytes already delivered."""
    blob_ids = {r.blob_id for r in receipts}
    return set(Message.objects.filter(blob_id__in=blob_ids).values_list("mailbox_id", "blob_id"))


def _quarantine_reason(parsed: ParsedMessage, mailboxes: list[Mailbox], unknown: list[str]) -> str:
    if parsed.is_malformed:
        return "no message header found: not an RFC 5322 message"
    if not mailboxes:
        return "no local recipient" + (f": unknown {', '.join(unknown)}" if unknown else "")
    return ""


def receipt_fail(*, receipt_id: int, error: str) -> None:
    """Mark a receipt failed after a permanent error; staff can reprocess it from admin."""
    receipt = InboundReceipt.objects.filter(pk=receipt_id).first()
    if receipt is not None:
        inbound_receipt_finish(receipt=receipt, status=InboundReceipt.Status.FAILED, error=error)
        INBOUND_FAILED.inc()
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
    copy = _copy(receipt, parsed)
    delivered = message_deliver(
        mailbox=mailbox,
        blob=copy.blob,
        parsed=parsed,
        source_tag=copy.source_tag,
        label_roles=copy.label_roles,
        user_labels=copy.user_labels,
        is_read=copy.is_read,
        is_starred=copy.is_starred,
        receipt=receipt,
        received_at=receipt.received_at,
    )
    if not delivered.created:
        _sent_to_self_file(receipt, mailbox)


def _sent_to_self_file(receipt: InboundReceipt, mailbox: Mailbox) -> None:
    """Mail a mailbox sent to itself (To or Cc, not Bcc) arrives as the very bytes of its Sent
    copy, so there is no second message to deliver: the Sent copy is filed in the Inbox too,
    as webmail shows it, one message in one conversation. Only for our own hand-offs (a
    resent inbound message changes nothing) and only when the delivery is released, so an undone
    send never reaches the Inbox."""
    if receipt.source != InboundReceipt.Source.LOCAL:
        return
    message = Message.objects.filter(mailbox=mailbox, blob_id=receipt.blob_id).first()
    inbox = Label.objects.filter(mailbox=mailbox, role=Label.Role.INBOX).first()
    if message is not None and inbox is not None:
        messages_label_add(mailbox=mailbox, message_ids=[message.id], label=inbox)


def _copy(receipt: InboundReceipt, parsed: ParsedMessage) -> Copy:
    hints = receipt.metadata
    return Copy(
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
def _quarantine(receipt: InboundReceipt, reason: str, unknown: list[str] | None = None) -> ReceiptOutcome:
    inbound_receipt_finish(
        receipt=receipt, status=InboundReceipt.Status.QUARANTINED, error=reason, unknown_recipients=unknown or []
    )
    _quarantine_event(receipt, reason).save()
    transaction.on_commit(INBOUND_QUARANTINED.inc)
    logger.warning("inbound.quarantined", receipt_id=receipt.id, reason=reason)
    return ReceiptOutcome(InboundReceipt.Status.QUARANTINED)


def _quarantine_event(receipt: InboundReceipt, reason: str) -> DomainEvent:
    return DomainEvent(
        event_type=DomainEvent.Type.RECEIPT_QUARANTINED,
        subject_type="receipt",
        subject_id=receipt.id,
        source_tag=_source_tag(receipt),
        payload={"reason": reason},
        occurred_at=timezone.now(),
    )
