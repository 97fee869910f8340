"""Celery tasks of outbound transport: thin, id-taking, idempotent (the claim makes them so)."""

import structlog
from celery import shared_task
from django.db import transaction

from delivery.outbound import (
    outbound_release_due,
    outbound_send,
    outbound_send_queue_on_commit,
    outbound_sweep_interrupted,
)

logger = structlog.get_logger(__name__)


@shared_task(name="delivery.outbound_send", acks_late=True, reject_on_worker_lost=True)
def outbound_send_task(delivery_ids: list[int]) -> dict[str, int]:
    """Hand off a batch of deliveries. Run twice, or after its worker died, it sends nothing
    again: only deliveries still waiting can be claimed."""
    outcome = outbound_send(delivery_ids=delivery_ids)
    return {"sent": outcome.sent, "retried": outcome.retried, "failed": outcome.failed, "dead": outcome.dead}


@shared_task(name="delivery.outbound_release")
def outbound_release_task() -> int:
    """Beat: queue what is due (send later, retries, tasks lost with the broker) and dead-letter
    attempts interrupted mid-send."""
    interrupted = outbound_sweep_interrupted()
    if interrupted:
        logger.error("outbound.interrupted", delivery_ids=interrupted)
    with transaction.atomic():
        due = outbound_release_due()
        outbound_send_queue_on_commit(delivery_ids=due, countdown=0)
    if due:
        logger.info("outbound.released", count=len(due))
    return len(due)
