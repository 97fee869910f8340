from datetime import date, datetime
from functools import lru_cache
from html import escape

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from mailbox.selectors import ThreadRow
from threads.models import Thread

register = template.Library()

# A list row, built in Python rather than by the template engine: 50 rows of template nodes,
# filters and ``{% localize off %}`` blocks cost ~20 ms of CPU a page, this a small fraction of it.
# The markup is exactly what the row template rendered: numbers unlocalised, every text escaped
# (by html.escape, which is what django.utils.html.escape calls, without its per-call lazy check).
ROW = """<li class="thread{unread}" id="thread-{id}" data-thread="{id}" data-sort="{sort}">
  <input type="checkbox" class="select" name="thread" value="{id}" form="bulk" aria-label="Select “{subject}”">
  {star}
  <a class="open" href="/t/{id}/">
    <span class="senders">{senders}</span>
    {count}
    <span class="labels">{chips}</span>
    <span class="subject">{subject}</span>
    <span class="snippet">{snippet}</span>
    {attachment}
    <time datetime="{iso}">{short}</time>
  </a>
</li>"""
STARRED = (
    '<button type="submit" form="unstar-form" name="thread" value="{id}" class="star on" aria-pressed="true"'
    ' title="Starred" aria-label="Unstar">★</button>'
)
NOT_STARRED = (
    '<button type="submit" form="star-form" name="thread" value="{id}" class="star" aria-pressed="false"'
    ' title="Not starred" aria-label="Star">☆</button>'
)
COUNT = '<span class="count" title="{count} messages">{count}</span>'
CHIP = '<span class="label-chip chip-{colour}" data-label="{id}">{name}</span>'
ATTACHMENT = (
    '<svg class="attachment" viewBox="0 0 24 24" role="img" aria-label="Has attachments"><path d="M16.5 6.5v10a4.5'
    ' 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5" fill="none" stroke="currentColor"'
    ' stroke-width="1.6" stroke-linecap="round"/></svg>'
)


# One sidebar entry exactly as the sidebar template's loop rendered it (its whitespace included).
SIDEBAR_ENTRY = """
      <li{current_class}>
        <a href="{url}"{current_aria} data-list="{key}" data-go="{role}">
          {chip}<span class="name">{name}</span>
          <span class="count" data-unread-for="{key}">{unread}</span>
        </a>
      </li>
    """
SIDEBAR_CHIP = '<span class="chip chip-{colour}" aria-hidden="true"></span>'


@register.simple_tag
def sidebar_entries(entries: list[dict]) -> SafeString:
    """The sidebar's entries (``views._sidebar``), built in Python like the rows: the template loop
    was a tenth of the list page's CPU."""
    return mark_safe(  # noqa: S308 - every text in it is escaped, the count is a number
        "".join(
            SIDEBAR_ENTRY.format(
                current_class=' class="current"' if entry["current"] else "",
                current_aria=' aria-current="page"' if entry["current"] else "",
                url=escape(entry["url"]),
                key=escape(str(entry["key"])),
                role=escape(str(entry["role"])),
                chip=SIDEBAR_CHIP.format(colour=escape(entry["colour"][1:] or "none"))
                if entry["is_user_label"]
                else "",
                name=escape(str(entry["name"])),
                unread=int(entry["unread"]) if entry["unread"] else "",
            )
            for entry in entries
        )
    )


@register.filter
def short_date(value: datetime | None) -> str:
    """Today → time; this year → day and month; older → the full date."""
    if value is None:
        return ""
    return _short_local_date(timezone.localtime(value), timezone.localdate())


def _short_local_date(local: datetime, today: date) -> str:
    if local.date() == today:
        return f"{local.hour:02d}:{local.minute:02d}"  # the date format "H:i"
    return _day_and_month(local.date(), local.year == today.year, get_language())


@lru_cache(maxsize=1024)
def _day_and_month(day: date, this_year: bool, language: str | None) -> str:
    """Django's "j M" / "j M Y" of a day (month names translated), made once per day and language:
    a page of rows shows a few distinct days, and the date formatter is the costly part of a row."""
    return date_format(day, "j M" if this_year else "j M Y")


@register.simple_tag
def senders(thread: Thread, own_address: str) -> str:
    """The thread's senders, "me" for the mailbox owner: one sender by full name, several by first name."""
    shown = thread.participants[:3]

    def name(participant: dict) -> str:
        if participant["address"] == own_address:
            return "me"
        full = participant["name"].strip() or participant["address"]
        return full.split()[0] if len(shown) > 1 else full

    return ", ".join(name(p) for p in shown) or "(nobody)"


@register.simple_tag
def thread_row(thread: Thread | ThreadRow, own_address: str, today: date | None = None) -> SafeString:
    """One thread's row of a list, as a page and a live update both show it (``thread.chips``: the
    labels to show on the row, set by the view; ``today``: the local date, if the caller has it)."""
    count, thread_id = thread.message_count, int(thread.id)
    last = timezone.localtime(thread.last_message_at) if thread.last_message_at else None
    chips = "".join(
        CHIP.format(colour=escape(chip.colour[1:] or "none"), id=int(chip.id), name=escape(chip.name))
        for chip in thread.chips
    )
    return mark_safe(  # noqa: S308 - every value in it is escaped above or a number
        ROW.format(
            unread=" unread" if thread.unread_count else "",
            id=thread_id,
            sort=int(last.timestamp()) if last else "",
            subject=escape(thread.subject or "(no subject)"),
            star=(STARRED if thread.starred_count else NOT_STARRED).format(id=thread_id),
            senders=escape(senders(thread, own_address)),
            count=COUNT.format(count=int(count)) if count > 1 else "",
            chips=chips,
            snippet=escape(str(thread.snippet)),
            attachment=ATTACHMENT if thread.has_attachments else "",
            iso=last.isoformat() if last else "",  # the date filter's "c"
            short=escape(_short_local_date(last, today or timezone.localdate())) if last else "",
        )
    )


@register.simple_tag
def thread_rows(threads: list[Thread], own_address: str) -> SafeString:
    """A page's rows, each as ``thread_row`` makes it and the row partial ends it (a newline)."""
    today = timezone.localdate()
    return mark_safe("".join(f"{thread_row(thread, own_address, today)}\n" for thread in threads))  # noqa: S308 - escaped rows
