"""Reads of the transport layer."""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.core.files import File
from django.core.files.storage import storages

from delivery.models import Blob, DeliveryEvent, InboundReceipt, OutboundDelivery
from delivery.storage import BlobIntegrityError


class HasId(Protocol):
    """A mailbox, seen from ``delivery``, which never imports ``mailbox``: its id is enough."""

    id: int


def blob_read(*, blob: Blob) -> bytes:
    """The exact bytes stored for ``blob``, checked against its size and sha256.

    Raises ``BlobIntegrityError`` if the storage holds anything else (a file truncated before
    writes were atomic, or damaged since), so nothing parses, forwards or sends garbage silently.
    """
    with storages["mail"].open(blob.storage_key, "rb") as handle:
        data = handle.read()
    if len(data) != blob.size or hashlib.sha256(data).hexdigest() != blob.sha256:
        raise BlobIntegrityError(
            f"blob {blob.sha256} at {blob.storage_key!r}: storage holds {len(data)} bytes with sha256 "
            f"{hashlib.sha256(data).hexdigest()}, not the {blob.size} bytes recorded: restore the raw bytes "
            "before reprocessing"
        )
    return data


def inbound_receipts_waiting(*, receipt_ids: list[int]) -> list[int]:
    """Those of ``receipt_ids`` still waiting to be parsed, in id order."""
    waiting = InboundReceipt.objects.filter(pk__in=receipt_ids, status=InboundReceipt.Status.RECEIVED)
    return list(waiting.order_by("id").values_list("id", flat=True))


def inbound_receipt_attempts(*, receipt_id: int) -> int | None:
    """How many times the receipt has been tried, by whichever tasks; ``None`` if it is gone."""
    return InboundReceipt.objects.filter(pk=receipt_id).values_list("attempts", flat=True).first()


@dataclass(frozen=True)
class TimelineStep:
    event_type: str
    occurred_at: datetime
    response: str


@dataclass(frozen=True)
class RecipientTimeline:
    """One recipient's way: queued → sent → delivered / bounced, with the server's words."""

    delivery_id: int
    recipient: str
    status: str
    reason: str  # why it was not delivered; empty otherwise
    steps: list[TimelineStep]

    @property
    def is_failure(self) -> bool:
        return self.status in FAILURE_STATUSES

    @property
    def failure_text(self) -> str:
        """ "Not delivered to X: reason", for the conversation view."""
        return f"Not delivered to {self.recipient}: {self.reason or self.status}" if self.is_failure else ""


FAILURE_STATUSES = frozenset(
    {
        OutboundDelivery.Status.BOUNCED,
        OutboundDelivery.Status.REJECTED,
        OutboundDelivery.Status.FAILED,
        OutboundDelivery.Status.DEAD,
        OutboundDelivery.Status.COMPLAINED,
    }
)


def delivery_timeline_for_message(*, mailbox: HasId, message_id: int) -> list[RecipientTimeline]:
    """Per recipient of one of ``mailbox``'s sent messages, its delivery events in order.
    Another mailbox's message gives an empty list."""
    return delivery_timelines_for_messages(mailbox=mailbox, message_ids=[message_id]).get(message_id, [])


def delivery_timelines_for_messages(*, mailbox: HasId, message_ids: list[int]) -> dict[int, list[RecipientTimeline]]:
    """``delivery_timeline_for_message`` for many messages in two queries (a conversation's):
    message id → its recipients' timelines; messages without deliveries are absent."""
    deliveries = OutboundDelivery.objects.filter(mailbox_id=mailbox.id, message_id__in=message_ids).order_by("id")
    events = DeliveryEvent.objects.filter(mailbox_id=mailbox.id, delivery__in=deliveries).order_by("occurred_at", "id")
    steps: dict[int, list[TimelineStep]] = {}
    for event in events.exclude(event_type__in=(DeliveryEvent.Type.OPENED, DeliveryEvent.Type.CLICKED)):
        response = event.mta_response or event.description
        steps.setdefault(event.delivery_id, []).append(TimelineStep(event.event_type, event.occurred_at, response))
    timelines: dict[int, list[RecipientTimeline]] = {}
    for d in deliveries:
        timelines.setdefault(d.message_id, []).append(
            RecipientTimeline(
                d.id, d.recipient, d.status, d.last_error if d.status in FAILURE_STATUSES else "", steps.get(d.id, [])
            )
        )
    return timelines


def outbound_scheduled_message_ids(*, mailbox: HasId) -> list[int]:
    """The mailbox's messages with deliveries waiting for their send-later time."""
    scheduled = OutboundDelivery.objects.filter(mailbox_id=mailbox.id, status=OutboundDelivery.Status.SCHEDULED)
    return list(scheduled.values_list("message_id", flat=True).distinct())


def blob_open(*, blob: Blob) -> File:
    """The stored bytes of ``blob`` as an open file, to stream without loading them whole."""
    return storages["mail"].open(blob.storage_key, "rb")
