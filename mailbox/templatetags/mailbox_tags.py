from datetime import date, datetime
from functools import lru_cache

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import get_language

from threads.models import Thread

register = template.Library()


@register.filter
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
