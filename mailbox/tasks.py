"""Celery tasks of the mailbox app: thin, id-taking, idempotent."""

import random
from datetime import timedelta

import structlog
from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from delivery.metrics import INBOUND_RETRIED
from delivery.selectors import inbound_receipt_attempts
from delivery.services import inbound_receipt_retry_schedule, inbound_receipts_sweep
from mailbox.services.receiving import receipt_fail, receipt_process, receipts_process_batch
from mailsite.celery import queue_depth

logger = structlog.get_logger(__name__)

# Errors that another attempt may not meet: the database, the object storage or the network.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, OSError, BotoCoreError, ClientError)
# Tries of one receipt in all, whichever tasks make them (a batch, its own task and its retries,
# a task the sweeper queued): counted on the receipt, so parallel chains share one budget.
MAX_ATTEMPTS = 10


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
            attempts = _attempts_made(receipt_id, fallback=self.request.retries + 1)
            if attempts >= MAX_ATTEMPTS:
                receipt_fail(receipt_id=receipt_id, error=f"gave up after {attempts} attempts: {error!r}")
                return
            logger.warning("inbound.retried", error=repr(error))
            INBOUND_RETRIED.inc()
            countdown = _backoff(attempts - 1)
            _retry_note(receipt_id, countdown)
            raise self.retry(exc=error, countdown=countdown, max_retries=MAX_ATTEMPTS) from error
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


def _attempts_made(receipt_id: int, fallback: int) -> int:
    """The receipt's tries in all; this chain's own count when the database cannot say (it may be
    the very fault being retried)."""
    try:
        attempts = inbound_receipt_attempts(receipt_id=receipt_id)
    except TRANSIENT_ERRORS:
        return fallback
    return fallback if attempts is None else attempts


def _retry_note(receipt_id: int, countdown: int) -> None:
    """Best effort: if the database is the fault, the sweeper may queue the receipt once more."""
    try:
        inbound_receipt_retry_schedule(receipt_id=receipt_id, at=timezone.now() + timedelta(seconds=countdown))
    except TRANSIENT_ERRORS:
        logger.warning("inbound.retry_not_recorded", receipt_id=receipt_id)


@shared_task(name="mailbox.receipts_sweep")
def receipts_sweep_task() -> int:
    """Re-queue receipts left unparsed well after their try was due (e.g. the broker was down when
    they were committed). Not while the broker still holds parse tasks: during a backlog, waiting
    receipts are most likely queued already, and the workers reach them."""
    backlog = queue_depth()
    if backlog:
        logger.info("inbound.sweep_deferred", queued=backlog)
        return 0
    now = timezone.now()
    swept = inbound_receipts_sweep(due_before=now - settings.MAILSITE_RECEIPT_SWEEP_AFTER, now=now)
    for receipt_id, correlation_id in swept:
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            receipt_process_task.delay(receipt_id)
    if swept:
        logger.info("inbound.swept", count=len(swept))
    return len(swept)
