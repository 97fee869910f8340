"""Anymail's tracking signal → ``tracking_event_record``: thin, as every signal receiver here.

Anymail's webhook view has authenticated the request (basic auth, Mailgun signatures; SNS
signatures in ``delivery.sns``) and normalised the ESP's payload into an event.
"""

from typing import Any

from anymail.signals import AnymailTrackingEvent
from django.utils import timezone

from delivery.tracking import TrackingEvent, tracking_event_record


def anymail_tracking_received(sender: type, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    """Record one tracking event. Errors propagate: Anymail answers 500 and the ESP retries."""
    tracking_event_record(
        event=TrackingEvent(
            esp=esp_name.lower().replace(" ", "_"),
            event_type=str(event.event_type or ""),
            occurred_at=event.timestamp or timezone.now(),
            recipient=(event.recipient or "").lower(),
            esp_event_id=str(event.event_id or ""),
            esp_message_id=str(event.message_id or ""),
            delivery_id=_delivery_id(event.metadata),
            mta_response=str(event.mta_response or ""),
            description=str(event.description or event.reject_reason or ""),
            payload=_json_payload(event.esp_event),
        )
    )


def _delivery_id(metadata: dict[str, Any] | None) -> int | None:
    value = str((metadata or {}).get("delivery_id", ""))
    return int(value) if value.isdigit() else None


def _json_payload(esp_event: Any) -> Any:
    """The ESP's own event where it is JSON (dict/list); a form post is not kept."""
    return esp_event if isinstance(esp_event, dict | list) else {}
