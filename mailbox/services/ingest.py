"""The front door: every channel (ESP webhook, SMTP, import) hands raw mail in here.

Not re-exported from ``mailbox.services``: it queues ``mailbox.tasks``, which import the other
services, so importing it from the package would be circular.
"""

import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction

from delivery.metrics import INBOUND_DUPLICATES, INBOUND_RECEIVED
from delivery.models import InboundReceipt
from delivery.services import (
    Arrival,
    ReceiptStored,
    inbound_receipt_create,
    inbound_receipt_reset,
    inbound_receipts_create,
)
from mailbox.tasks import receipt_process_task, receipts_process_batch_task

logger = structlog.get_logger(__name__)


def inbound_accept(
    *,
    source: str,
    raw: bytes,
    esp: str = "",
    event_id: str = "",
    envelope_sender: str = "",
    envelope_recipients: list[str] | tuple[str, ...] = (),
    verdicts: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> ReceiptStored:
    """Store the bytes and the receipt durably, then queue the parse once that has committed.

    Answer the sender only after this returns: from then on the message cannot be lost.
    A repeat of the same arrival changes nothing and queues nothing.
    """
    # The web request's id (django-structlog's), so its log lines and the parse task's share it;
    # a fresh one where no request is bound (the SMTP listener).
    correlation_id = str(structlog.contextvars.get_contextvars().get("request_id", "")) or uuid.uuid4().hex
    with transaction.atomic():
        stored = inbound_receipt_create(
            source=source,
            raw=raw,
            esp=esp,
            event_id=event_id,
            envelope_sender=envelope_sender,
            envelope_recipients=envelope_recipients,
            verdicts=verdicts,
            correlation_id=correlation_id,
            metadata=metadata,
        )
        if stored.created:
            # robust: a broker outage must not fail the request; the sweeper queues it later.
            transaction.on_commit(_parse_queuer(stored.receipt.id), robust=True)
    (INBOUND_RECEIVED if stored.created else INBOUND_DUPLICATES).labels(source=source).inc()
    logger.info(
        "inbound.received" if stored.created else "inbound.duplicate",
        receipt_id=stored.receipt.id,
        source=source,
        esp=esp,
    )
    return stored


def inbound_accept_many(*, arrivals: list[Arrival]) -> list[ReceiptStored]:
    """``inbound_accept`` for a batch of arrivals (a bulk import): stored and committed together,
    then their parse queued in batches of ``MAILSITE_INBOUND_BATCH_SIZE`` once that has committed."""
    with transaction.atomic():
        stored = inbound_receipts_create(arrivals=arrivals)
        created = [s.receipt.id for s in stored if s.created]
        size = max(1, settings.MAILSITE_INBOUND_BATCH_SIZE)
        for start in range(0, len(created), size):
            transaction.on_commit(_batch_queuer(created[start : start + size]), robust=True)
    duplicates = len(stored) - len(created)
    for source in {arrival.source for arrival in arrivals}:
        received = sum(1 for s in stored if s.created and s.receipt.source == source)
        INBOUND_RECEIVED.labels(source=source).inc(received)
        INBOUND_DUPLICATES.labels(source=source).inc(sum(1 for a in arrivals if a.source == source) - received)
    logger.info("inbound.received_batch", received=len(created), duplicates=duplicates)
    return stored


def inbound_reprocess(*, receipt_ids: list[int]) -> int:
    """Put failed or quarantined receipts back in line and queue them (staff, after a fix).

    Returns how many were queued; parsed receipts are left alone.
    """
    reprocessable = (InboundReceipt.Status.FAILED, InboundReceipt.Status.QUARANTINED, InboundReceipt.Status.RECEIVED)
    ids = list(InboundReceipt.objects.filter(pk__in=receipt_ids, status__in=reprocessable).values_list("id", flat=True))
    with transaction.atomic():
        for receipt_id in ids:
            inbound_receipt_reset(receipt_id=receipt_id)
            transaction.on_commit(_parse_queuer(receipt_id), robust=True)
    return len(ids)


def _parse_queuer(receipt_id: int) -> Callable[[], None]:
    """An on-commit callback that queues the parse. A named function, because Django logs a
    robust callback's failure (e.g. the broker is down) by its qualified name."""

    def queue_parse() -> None:
        receipt_process_task.delay(receipt_id)

    return queue_parse


def _batch_queuer(receipt_ids: list[int]) -> Callable[[], None]:
    def queue_parse_batch() -> None:
        receipts_process_batch_task.delay(receipt_ids)

    return queue_parse_batch
