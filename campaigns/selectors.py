"""Reads the campaign workflows and analytics export build on."""

from mailsite.models import DomainEvent

EVENT_BATCH = 1000


def domain_events_after(
    *, after_id: int, event_types: list[str] | None = None, limit: int = EVENT_BATCH
) -> list[DomainEvent]:
    """Events recorded after ``after_id``, oldest first: a consumer keeps the last id it processed.

    Ids are assigned at insert, so an event committed late can carry a lower id than one already
    read; consumers that must not miss any re-read a short window behind their cursor.
    """
    events = DomainEvent.objects.filter(id__gt=after_id)
    if event_types:
        events = events.filter(event_type__in=event_types)
    return list(events.order_by("id")[:limit])
