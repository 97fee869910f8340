"""Appending to the domain event log, the one record later workflows and analytics consume."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from mailsite.models import DomainEvent


@dataclass(frozen=True)
class EventSpec:
    """One event to append with ``domain_events_record``."""

    event_type: str
    subject_type: str
    subject_id: int
    payload: dict[str, Any] = field(default_factory=dict)


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


def domain_events_record(
    *, events: Iterable[EventSpec], mailbox_id: int | None = None, source_tag: str = ""
) -> list[DomainEvent]:
    """Append several events of one change in one statement, in the caller's transaction; they come
    back with their ids, in the order given."""
    now = timezone.now()
    rows = [
        DomainEvent(
            event_type=spec.event_type,
            subject_type=spec.subject_type,
            subject_id=spec.subject_id,
            mailbox_id=mailbox_id,
            source_tag=source_tag,
            payload=spec.payload,
            occurred_at=now,
        )
        for spec in events
    ]
    for row in rows:
        row.full_clean()
    return DomainEvent.objects.bulk_create(rows)
