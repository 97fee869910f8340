"""Celery tasks of the mailbox app: thin, id-taking, idempotent."""

import random

import structlog
from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from delivery.metrics import INBOUND_RETRIED
from delivery.selectors import inbound_receipts_stale
from mailbox.services.receiving import receipt_fail, receipt_process, receipts_process_batch

logger = structlog.get_logger(__name__)

# Errors that another attempt may not meet: the database, the object storage or the network.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, OSError, BotoCoreError, ClientError)
MAX_RETRIES = 8


def _backoff(retries: int) -> int:
    """Exponential back-off with full jitter, capped at ten minutes."""
    return random.randint(1, min(600, 2 ** (retries + 1)))  # noqa: S311 - jitter, not security


@shared_task(bind=True, name="mailbox.receipt_process", acks_late=True, reject_on_worker_lost=True)
def receipt_process_task(self, receipt_id: int, batch: bool = True) -> None:  # noqa: ANN001 - Celery's bound task
    """Process one receipt. On a first try, take along other receipts waiting their first try (a
    batch, so a busy worker catches up in bulk); their own tasks then find them done. If the batch
    fails, this receipt goes on alone and the others are queued alone, each with its own retries."""
    with structlog.contextvars.bound_contextvars(receipt_id=receipt_id, attempt=self.request.retries + 1):
        if batch and self.request.retries == 0 and settings.MAILSITE_INBOUND_BATCH_SIZE > 1:
            outcome = receipts_process_batch(receipt_ids=[receipt_id], fill_to=settings.MAILSITE_INBOUND_BATCH_SIZE)
            _queue_alone([i for i in outcome.handed_back if i != receipt_id])
            if receipt_id not in outcome.handed_back:  # done: in this batch or another worker's
                return
        try:
            receipt_process(receipt_id=receipt_id)
        except TRANSIENT_ERRORS as error:
            if self.request.retries >= MAX_RETRIES:
                receipt_fail(receipt_id=receipt_id, error=f"gave up after {MAX_RETRIES} retries: {error!r}")
                return
            logger.warning("inbound.retried", error=repr(error))
            INBOUND_RETRIED.inc()
            raise self.retry(exc=error, countdown=_backoff(self.request.retries), max_retries=MAX_RETRIES) from error
        except Exception as error:
            # A bug met by this message: keep it visible to staff, who reprocess after the fix.
            logger.exception("inbound.failed")
            receipt_fail(receipt_id=receipt_id, error=repr(error))


@shared_task(name="mailbox.receipts_process_batch", acks_late=True, reject_on_worker_lost=True)
def receipts_process_batch_task(receipt_ids: list[int]) -> None:
    """Process a bulk import's receipts together; after a failure, each goes on alone."""
    outcome = receipts_process_batch(receipt_ids=receipt_ids)
    _queue_alone(outcome.handed_back)


def _queue_alone(receipt_ids: list[int]) -> None:
    for receipt_id in receipt_ids:
        receipt_process_task.delay(receipt_id, batch=False)


@shared_task(name="mailbox.receipts_sweep")
def receipts_sweep_task() -> int:
    """Re-queue receipts left unparsed (e.g. the broker was down when they were committed)."""
    cutoff = timezone.now() - settings.MAILSITE_RECEIPT_SWEEP_AFTER
    stale = inbound_receipts_stale(received_before=cutoff)
    for receipt_id in stale:
        receipt_process_task.delay(receipt_id)
    if stale:
        logger.info("inbound.swept", count=len(stale))
    return len(stale)
