"""Appending to the domain event log, the one record later workflows and analytics consume."""

from datetime import datetime
from typing import Any

from django.utils import timezone

from mailsite.models import DomainEvent


def domain_event_record(
    *,
    event_type: str,
    subject_type: str,
    subject_id: int,
    mailbox_id: int | None = None,
    source_tag: str = "",
    payload: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> DomainEvent:
    """Append one event. Call inside the transaction of the change it records, so both commit together."""
    event = DomainEvent(
        event_type=event_type,
        subject_type=subject_type,
        subject_id=subject_id,
        mailbox_id=mailbox_id,
        source_tag=source_tag,
        payload=payload or {},
        occurred_at=occurred_at or timezone.now(),
    )
    event.full_clean()
    event.save()
    return event
