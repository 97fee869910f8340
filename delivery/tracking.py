"""What happens to a delivery after the hand-off: status changes, ESP tracking events, bounce
reports (DSN) and the suppression list.

Statuses only move forward (``STATUS_RANK``): tracking webhooks arrive late, twice and out of
order, so a late "deferred" never overwrites "delivered", and a replayed event changes nothing.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from delivery.models import DeliveryEvent, OutboundDelivery, Suppression
from mailsite.events import domain_event_record
from mailsite.models import DomainEvent
from mailsite.realtime import mailbox_publish_many_on_commit, mailbox_publish_on_commit

logger = structlog.get_logger(__name__)

Status = OutboundDelivery.Status
STATUS_RANK = {
    Status.SCHEDULED: 0,
    Status.QUEUED: 0,
    Status.SENDING: 1,
    Status.SENT: 2,
    Status.DEFERRED: 3,
    Status.DELIVERED: 4,
    Status.BOUNCED: 5,
    Status.REJECTED: 5,
    Status.FAILED: 5,
    Status.DEAD: 5,
    Status.COMPLAINED: 6,
    Status.CANCELLED: 7,
}
# Delivery event → the status it implies; opens, clicks and unsubscribes leave the status alone.
EVENT_STATUS = {
    DeliveryEvent.Type.SENT: Status.SENT,
    DeliveryEvent.Type.DELIVERED: Status.DELIVERED,
    DeliveryEvent.Type.DEFERRED: Status.DEFERRED,
    DeliveryEvent.Type.BOUNCED: Status.BOUNCED,
    DeliveryEvent.Type.REJECTED: Status.REJECTED,
    DeliveryEvent.Type.FAILED: Status.FAILED,
    DeliveryEvent.Type.COMPLAINED: Status.COMPLAINED,
}
STATUS_EVENT = {
    Status.QUEUED: DeliveryEvent.Type.QUEUED,
    Status.SENT: DeliveryEvent.Type.SENT,
    Status.FAILED: DeliveryEvent.Type.FAILED,
    Status.DEAD: DeliveryEvent.Type.FAILED,
}
SUPPRESSING_EVENTS = {
    DeliveryEvent.Type.BOUNCED: Suppression.Reason.HARD_BOUNCE,
    DeliveryEvent.Type.COMPLAINED: Suppression.Reason.COMPLAINT,
}


def delivery_status_change(
    *,
    delivery: OutboundDelivery,
    status: str,
    event_type: str | None = None,
    mta_response: str = "",
    description: str = "",
    extra_fields: tuple[str, ...] = (),
    publish: bool = True,
    occurred_at: datetime | None = None,
) -> DomainEvent:
    """Save ``delivery`` in its new status (with ``extra_fields``), add the timeline event, append
    ``delivery.status_changed`` and, on commit, tell the sender's open tabs."""
    with transaction.atomic():
        delivery.status = status
        delivery.save(update_fields=["status", "updated_at", *extra_fields])
        event_type = event_type or STATUS_EVENT.get(status)
        occurred_at = occurred_at or timezone.now()
        if event_type:
            DeliveryEvent.objects.create(
                mailbox_id=delivery.mailbox_id,
                delivery=delivery,
                event_type=event_type,
                esp=delivery.esp,
                occurred_at=occurred_at,
                mta_response=mta_response[:10_000],
                description=description or ("dead letter" if status == Status.DEAD else ""),
            )
        return _status_changed_notify(delivery, occurred_at, publish=publish)


def deliveries_record_sent(*, deliveries: list[OutboundDelivery]) -> None:
    """Record a batch of hand-offs in one transaction: each delivery ``sent`` (``last_error``
    holds the server's answer on the way in, and is cleared), its ``sent`` event, its
    ``delivery.status_changed`` domain event, and one live update per message."""
    with transaction.atomic():
        now = timezone.now()
        responses = {d.id: d.last_error for d in deliveries}
        for delivery in deliveries:
            delivery.status, delivery.last_error = Status.SENT, ""
        _sent_rows_update(deliveries, now)
        DeliveryEvent.objects.bulk_create(
            DeliveryEvent(
                mailbox_id=d.mailbox_id,
                delivery=d,
                event_type=DeliveryEvent.Type.SENT,
                esp=d.esp,
                occurred_at=d.handed_off_at or now,
                mta_response=responses[d.id][:10_000],
            )
            for d in deliveries
        )
        # The same rows domain_event_record appends, in one statement for the batch.
        events = DomainEvent.objects.bulk_create(
            DomainEvent(
                event_type=DomainEvent.Type.DELIVERY_STATUS_CHANGED,
                subject_type="delivery",
                subject_id=d.id,
                mailbox_id=d.mailbox_id,
                source_tag=d.source_tag,
                payload={"message_id": d.message_id, "recipient": d.recipient, "status": d.status},
                occurred_at=d.handed_off_at or now,
            )
            for d in deliveries
        )
        latest = {(d.mailbox_id, d.message_id): event.id for d, event in zip(deliveries, events, strict=True)}
        mailbox_publish_many_on_commit(
            events=[
                (mailbox_id, {"type": "delivery.updated", "message_id": message_id, "event_id": event_id})
                for (mailbox_id, message_id), event_id in latest.items()
            ]
        )


def _sent_rows_update(deliveries: list[OutboundDelivery], now: datetime) -> None:
    """One UPDATE for the batch (Django's bulk_update builds a CASE per row and column)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE delivery_outbounddelivery AS d
            SET status = 'sent', last_error = '', updated_at = %s,
                esp = v.esp, esp_message_id = v.esp_message_id, handed_off_at = v.handed_off_at
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[])
                AS v(id, esp, esp_message_id, handed_off_at)
            WHERE d.id = v.id
            """,
            [
                now,
                [d.id for d in deliveries],
                [d.esp for d in deliveries],
                [d.esp_message_id for d in deliveries],
                [d.handed_off_at or now for d in deliveries],
            ],
        )


def _status_changed_notify(delivery: OutboundDelivery, occurred_at: datetime, *, publish: bool) -> DomainEvent:
    event = domain_event_record(
        event_type=DomainEvent.Type.DELIVERY_STATUS_CHANGED,
        subject_type="delivery",
        subject_id=delivery.id,
        mailbox_id=delivery.mailbox_id,
        source_tag=delivery.source_tag,
        payload={"message_id": delivery.message_id, "recipient": delivery.recipient, "status": delivery.status},
        occurred_at=occurred_at,
    )
    if publish:
        delivery_updated_publish(mailbox_id=delivery.mailbox_id, message_id=delivery.message_id, event_id=event.id)
    return event


def delivery_updated_publish(*, mailbox_id: int, message_id: int, event_id: int | None) -> None:
    mailbox_publish_on_commit(
        mailbox_id=mailbox_id,
        event={"type": "delivery.updated", "message_id": message_id, "event_id": event_id},
    )


@dataclass(frozen=True)
class TrackingEvent:
    """One ESP tracking event, as Anymail normalises it (or as a bounce report gives it)."""

    esp: str
    event_type: str
    occurred_at: datetime
    recipient: str = ""
    esp_event_id: str = ""
    esp_message_id: str = ""
    delivery_id: int | None = None
    mta_response: str = ""
    description: str = ""
    payload: Any = None


def tracking_event_record(*, event: TrackingEvent) -> DeliveryEvent | None:
    """Record a tracking event once (by ESP event id) and move the delivery forward if it says
    more than its status does; bounces and complaints suppress the address. Returns the new
    event, or ``None`` for a replay, an event type we do not track, or an unknown delivery."""
    if event.event_type not in DeliveryEvent.Type.values:
        return None
    with transaction.atomic():
        delivery = _delivery_for_event(event)
        if delivery is None:
            logger.info("tracking.unmatched", esp=event.esp, esp_message_id=event.esp_message_id, type=event.event_type)
            return None
        recorded = _event_insert(delivery, event)
        if recorded is None:
            return None
        _apply_event(delivery, event)
    return recorded


def _delivery_for_event(event: TrackingEvent) -> OutboundDelivery | None:
    deliveries = OutboundDelivery.objects.select_for_update()
    if event.delivery_id is not None:
        return deliveries.filter(pk=event.delivery_id).first()
    if not event.esp_message_id:
        return None
    matches = deliveries.filter(esp=event.esp, esp_message_id=event.esp_message_id)
    return matches.filter(recipient=event.recipient.lower()).first() or matches.first()


def _event_insert(delivery: OutboundDelivery, event: TrackingEvent) -> DeliveryEvent | None:
    row = DeliveryEvent(
        mailbox_id=delivery.mailbox_id,
        delivery=delivery,
        event_type=event.event_type,
        esp=event.esp,
        esp_event_id=(event.esp_event_id or _synthetic_event_id(event))[:255],
        occurred_at=event.occurred_at,
        mta_response=(event.mta_response or "")[:10_000],
        description=(event.description or "")[:10_000],
        payload=event.payload if isinstance(event.payload, dict | list) else {},
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        return None  # the same ESP event again
    return row


def _synthetic_event_id(event: TrackingEvent) -> str:
    """ESPs that give no event id: the event's identifying fields stand in, so a replay dedupes."""
    key = "|".join([event.event_type, event.esp_message_id, event.recipient, event.occurred_at.isoformat()])
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _apply_event(delivery: OutboundDelivery, event: TrackingEvent) -> None:
    new_status = EVENT_STATUS.get(event.event_type)
    if new_status and STATUS_RANK[new_status] > STATUS_RANK[delivery.status]:
        delivery.status = new_status
        # The server's words stay on a failure ("Not delivered to X: reason"); success clears them.
        failed = STATUS_RANK[new_status] >= STATUS_RANK[Status.BOUNCED]
        delivery.last_error = (event.mta_response or event.description or "")[:10_000] if failed else ""
        delivery.save(update_fields=["status", "last_error", "updated_at"])
        _status_changed_notify(delivery, event.occurred_at, publish=True)
    else:
        delivery_updated_publish(mailbox_id=delivery.mailbox_id, message_id=delivery.message_id, event_id=None)
    reason = SUPPRESSING_EVENTS.get(event.event_type)
    if reason:
        suppression_add(
            address=delivery.recipient,
            reason=reason,
            source=f"esp:{event.esp}" if event.esp != "dsn" else "dsn",
            detail=event.mta_response or event.description,
        )


def suppression_add(*, address: str, reason: str, source: str, detail: str = "") -> bool:
    """Put ``address`` on the suppression list; ``False`` if it already was (that entry stands)."""
    created = Suppression.objects.bulk_create(
        [Suppression(address=address.strip().lower(), reason=reason, source=source[:100], detail=detail[:10_000])],
        ignore_conflicts=True,
    )
    return bool(created and created[0].pk)


@dataclass(frozen=True)
class BouncedRecipient:
    recipient: str
    action: str  # failed, delayed, delivered, relayed, expanded (RFC 3464)
    status: str  # enhanced status code, e.g. "5.1.1"
    diagnostic: str = ""


def bounce_report_apply(
    *,
    report_key: str,
    envelope_recipients: list[str],
    original_message_id: str,
    recipients: list[BouncedRecipient],
    verp_delivery_id: int | None = None,
) -> list[DeliveryEvent]:
    """Apply a delivery status notification about mail we sent. The delivery is found by the VERP
    return path the report was addressed to (``verp_delivery_id``), else by the original
    Message-ID and the failed recipient. ``report_key`` identifies the report (e.g. its receipt
    id): applying the same report twice changes nothing. Returns the events recorded."""
    recorded = []
    for bounced in recipients:
        event_type = _dsn_event_type(bounced)
        if event_type is None:
            continue
        delivery = _delivery_for_report(verp_delivery_id, original_message_id, bounced.recipient)
        if delivery is None:
            continue
        event = TrackingEvent(
            esp="dsn",
            event_type=event_type,
            occurred_at=timezone.now(),
            recipient=bounced.recipient,
            esp_event_id=f"{report_key}:{bounced.recipient}"[:255],
            delivery_id=delivery.id,
            mta_response=bounced.diagnostic or bounced.status,
            description=f"{bounced.action} {bounced.status}".strip(),
        )
        result = tracking_event_record(event=event)
        if result is not None:
            recorded.append(result)
    return recorded


def _dsn_event_type(bounced: BouncedRecipient) -> str | None:
    action = bounced.action.lower()
    if action == "failed":
        # A 4.x.x "failed" is the remote giving up on a temporary problem: no suppression.
        return DeliveryEvent.Type.BOUNCED if not bounced.status.startswith("4") else DeliveryEvent.Type.FAILED
    if action == "delayed":
        return DeliveryEvent.Type.DEFERRED
    if action in ("delivered", "relayed", "expanded"):
        return DeliveryEvent.Type.DELIVERED
    return None


def _delivery_for_report(verp_id: int | None, original_message_id: str, recipient: str) -> OutboundDelivery | None:
    if verp_id is not None:
        return OutboundDelivery.objects.filter(pk=verp_id).first()
    if not original_message_id:
        return None
    candidates = OutboundDelivery.objects.filter(rfc_message_id=original_message_id.strip("<>"))
    return candidates.filter(recipient=recipient.lower()).first() if recipient else None


def bounce_receipt_apply(*, receipt_id: int, envelope_recipients: list[str], report: Any) -> int:
    """Apply an inbound delivery status notification (``mailbox.parsing``'s ``MessageReport``,
    read by attribute) to the deliveries it reports on. Returns how many events it recorded;
    0 for other reports, reports on mail we did not send, and a receipt seen before."""
    if report is None or report.report_type != "delivery-status":
        return 0
    verp_ids = [i for i in (verp_delivery_id(address=a) for a in envelope_recipients) if i is not None]
    recipients = [
        BouncedRecipient(recipient=r.recipient, action=r.action, status=r.status, diagnostic=r.diagnostic)
        for r in report.recipients
    ]
    recorded = bounce_report_apply(
        report_key=f"receipt:{receipt_id}",
        envelope_recipients=envelope_recipients,
        original_message_id=report.original_message_id,
        recipients=recipients,
        verp_delivery_id=verp_ids[0] if verp_ids else None,
    )
    return len(recorded)


def verp_delivery_id(*, address: str) -> int | None:
    """The delivery id a VERP return path (``bounces+<id>@domain``) names, or ``None``."""
    local, _, _ = address.strip().lower().partition("@")
    prefix = f"{settings.MAILSITE_VERP_LOCAL_PART.lower()}+"
    if not local.startswith(prefix) or not local[len(prefix) :].isdigit():
        return None
    return int(local[len(prefix) :])


def verp_address_known(*, address: str) -> bool:
    """Whether ``address`` is the return path of one of our deliveries (so bounces to it are ours)."""
    delivery_id = verp_delivery_id(address=address)
    return delivery_id is not None and OutboundDelivery.objects.filter(pk=delivery_id).exists()
