from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format

from threads.models import Thread

register = template.Library()


@register.filter
def short_date(value: datetime | None) -> str:
    """Today → time; this year → day and month; older → the full date."""
    if value is None:
        return ""
    local, now = timezone.localtime(value), timezone.localtime()
    if local.date() == now.date():
        return date_format(local, "H:i")
    if local.year == now.year:
        return date_format(local, "j M")
    return date_format(local, "j M Y")


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
