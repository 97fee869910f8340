"""What a thread list row shows, computed in Python once per row for the row template
(``mailbox/jinja2/mailbox/partials/thread_row.html``), which a full page and a live update both render:
the template only places values, so 50 rows cost little."""

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from django.template import engines
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import get_language
from markupsafe import Markup

from mailbox.models import Label
from mailbox.selectors import ThreadRow
from mailsite.jinja import url
from threads.models import Thread

# Reversed once; a row's URL is this with its id in place of the placeholder.
_PLACEHOLDER = 999999999999


def short_date(value: datetime | None) -> str:
    """Today → time; this year → day and month; older → the full date."""
    if value is None:
        return ""
    return short_local_date(timezone.localtime(value), timezone.localdate())


def short_local_date(local: datetime, today: date) -> str:
    if local.date() == today:
        return f"{local.hour:02d}:{local.minute:02d}"  # the date format "H:i"
    return _day_and_month(local.date(), local.year == today.year, get_language())


@lru_cache(maxsize=1024)
def _day_and_month(day: date, this_year: bool, language: str | None) -> str:
    """Django's "j M" / "j M Y" of a day (month names translated), made once per day and language:
    a page of rows shows a few distinct days, and the date formatter is the costly part of a row."""
    return date_format(day, "j M" if this_year else "j M Y")


def senders(thread: Thread, own_addresses: frozenset[str]) -> str:
    """The thread's senders, "me" for any of the mailbox's addresses: one sender by full name,
    several by first name; past three, as Gmail does, the first and the two latest ("A … D, E")."""
    people = thread.participants
    shown = people if len(people) <= 3 else [people[0], people[-2], people[-1]]

    def name(participant: dict) -> str:
        if participant["address"].lower() in own_addresses:
            return "me"
        full = participant["name"].strip() or participant["address"]
        return full.split()[0] if len(shown) > 1 else full

    names = [name(p) for p in shown]
    if len(people) > 3:
        return f"{names[0]} … {names[1]}, {names[2]}"
    return ", ".join(names) or "(nobody)"


@dataclass(slots=True)
class RowView:
    id: str  # as text: the template shows it four times, and text is escaped fastest
    url: str
    unread: bool
    starred: bool
    subject: str
    senders: str
    message_count: int
    chips: list[Label]
    snippet: str
    has_attachments: bool
    sort: str  # the last message's time in epoch seconds ("" for an empty thread)
    iso: str  # the date filter's "c"
    short: str  # today → time, this year → day and month, older → the full date


def row_views(
    threads: list[Thread] | list[ThreadRow], own_addresses: frozenset[str], today: date | None = None, *, back: str = ""
) -> list[RowView]:
    """The rows of ``threads`` (each with ``chips`` set by the view), "me" for ``own_addresses``;
    their links carry ``back`` (a ``?back=`` query naming the list, see ``mailbox.navigation``)."""
    zone = timezone.get_current_timezone()  # looked up once: it is a context-local read
    today = today or timezone.localdate(timezone=zone)
    pattern = url("thread_detail", _PLACEHOLDER)
    placeholder = str(_PLACEHOLDER)
    rows = []
    for thread in threads:
        last = thread.last_message_at.astimezone(zone) if thread.last_message_at else None
        thread_id = str(int(thread.id))
        rows.append(
            RowView(
                id=thread_id,
                url=pattern.replace(placeholder, thread_id) + back,
                unread=bool(thread.unread_count),
                starred=bool(thread.starred_count),
                subject=thread.subject or "(no subject)",
                senders=senders(thread, own_addresses),
                message_count=int(thread.message_count),
                chips=thread.chips,
                snippet=str(thread.snippet),
                has_attachments=bool(thread.has_attachments),
                sort=str(int(last.timestamp())) if last else "",
                iso=last.isoformat() if last else "",
                short=short_local_date(last, today) if last else "",
            )
        )
    return rows


ROW_TEMPLATE = "mailbox/partials/thread_row.html"


def rows_html(rows: list[RowView]) -> Markup:
    """The rows' markup from the row template, made on its own and placed in the page whole: each
    of a page's ~2,000 pieces of row markup would otherwise be handed up through every template
    the page nests (block, layout, page), which cost more CPU than making them."""
    return Markup(engines["jinja2"].env.get_template(ROW_TEMPLATE).render(rows=rows))  # noqa: S704 - escaped by the template
