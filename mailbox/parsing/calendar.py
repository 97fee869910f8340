"""An invitation's events (iTIP, RFC 5546), read from its text/calendar part with ``icalendar``.

What the conversation view shows above the body: title, start and end in the event's own time
zone, location, organizer, and whether it invites (REQUEST), cancels (CANCEL) or answers (REPLY).
Defensive: a calendar ``icalendar`` cannot read gives no events, never an error.
"""

from dataclasses import dataclass
from datetime import date, datetime

from icalendar import Calendar

from mailbox.parsing.headers import storable

CALENDAR_TYPES = frozenset({"text/calendar", "application/ics"})
MAX_EVENTS = 5  # an invitation has one; a calendar export attached as .ics is not an invitation
MAX_CALENDAR_BYTES = 1_000_000
_TEXT_LIMIT = 500


@dataclass(frozen=True)
class CalendarEvent:
    method: str  # REQUEST, CANCEL, REPLY, PUBLISH…; "" when the calendar names none
    title: str
    start: datetime | date | None  # a date for an all-day event; naive for "floating" local time
    end: datetime | date | None
    timezone: str  # "Europe/Helsinki", "UTC", or "" (all-day, floating, or unnamed)
    location: str
    organizer_name: str
    organizer_address: str
    cancelled: bool  # METHOD:CANCEL, or the event's STATUS:CANCELLED


def calendar_events(data: bytes) -> list[CalendarEvent]:
    """The events of a calendar part, at most ``MAX_EVENTS``; none when it is unreadable."""
    if len(data) > MAX_CALENDAR_BYTES:
        return []
    try:
        calendar = Calendar.from_ical(data.decode("utf-8", "replace"))
        method = _text(calendar.get("METHOD")).upper()
        return [_event(component, method) for component in calendar.walk("VEVENT")[:MAX_EVENTS]]
    except Exception:  # noqa: BLE001 - icalendar raises ValueError and worse on broken calendars
        return []


def _event(component: Calendar, method: str) -> CalendarEvent:
    start_property = component.get("DTSTART")
    start = _moment(start_property)
    organizer = component.get("ORGANIZER")
    address = _text(organizer)
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    return CalendarEvent(
        method=method,
        title=_text(component.get("SUMMARY")),
        start=start,
        end=_moment(component.get("DTEND")),
        timezone=_zone_name(start, start_property) if isinstance(start, datetime) and start.tzinfo else "",
        location=_text(component.get("LOCATION")),
        organizer_name=_text(organizer.params.get("CN")) if organizer is not None else "",
        organizer_address=address.strip(),
        cancelled=method == "CANCEL" or _text(component.get("STATUS")).upper() == "CANCELLED",
    )


def _moment(prop: object) -> datetime | date | None:
    value = getattr(prop, "dt", None)
    return value if isinstance(value, date) else None


def _zone_name(start: datetime, prop: object) -> str:
    """The IANA name where there is one, else the calendar's own TZID (Outlook's "FLE Standard
    Time", defined by the calendar's VTIMEZONE), else the zone's abbreviation."""
    zone = start.tzinfo
    name = getattr(zone, "key", None) or _text(getattr(prop, "params", {}).get("TZID")) or start.tzname()
    return str(name or "")[:64]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # a property repeated against the RFC: the first one
        value = value[0] if value else ""
    return storable(" ".join(str(value).split()))[:_TEXT_LIMIT]
