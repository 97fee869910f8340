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
    """The thread's senders by first name or address, "me" for the mailbox owner."""
    names = [
        "me" if p["address"] == own_address else (p["name"].split()[0] if p["name"].strip() else p["address"])
        for p in thread.participants[:3]
    ]
    return ", ".join(names) or "(nobody)"
