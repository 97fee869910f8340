"""Deliver the demo mail into a mailbox through ``message_import_raw``, the path real mail takes."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone as django_timezone

from mailbox.demo.generator import DemoMessage, demo_messages
from mailbox.demo.people import Person
from mailbox.models import Label, Mailbox, Message
from mailbox.services import mailbox_create, message_import_raw

SOURCE_TAG = "demo"


@dataclass(frozen=True)
class SeedResult:
    mailbox: Mailbox
    created_mailbox: bool
    delivered: int
    existing: int  # messages the mailbox held before; when non-zero, nothing was added


@transaction.atomic
def demo_mailbox_seed(
    *,
    address: str,
    password: str,
    count: int,
    seed: int,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SeedResult:
    """Create the demo mailbox if missing and deliver ``count`` generated messages into it.

    A mailbox that already holds messages is left alone. One transaction, so a failed run leaves
    no half-filled mailbox behind (only unreferenced content-addressed blobs in the mail storage).
    """
    mailbox = Mailbox.objects.filter(address=address.lower()).first()
    created = mailbox is None
    if mailbox is None:
        mailbox = mailbox_create(address=address, password=password, display_name="Demo User")
    existing = Message.objects.filter(mailbox=mailbox).count()
    if existing:
        return SeedResult(mailbox, created, delivered=0, existing=existing)
    user = Person(mailbox.display_name or "Demo User", mailbox.address)
    messages = demo_messages(user=user, count=count, seed=seed, now=now or django_timezone.now())
    _deliver(mailbox, messages, progress=progress)
    return SeedResult(mailbox, created, delivered=len(messages), existing=0)


def _deliver(mailbox: Mailbox, messages: Sequence[DemoMessage], *, progress: Callable[[int, int], None] | None) -> None:
    """The user's own messages land in Sent, everyone else's in the inbox."""
    for done, message in enumerate(messages, 1):
        message_import_raw(
            mailbox=mailbox,
            raw=message.raw,
            source_tag=SOURCE_TAG,
            label_roles=(Label.Role.SENT,) if message.by_user else (Label.Role.INBOX,),
            is_read=message.is_read,
        )
        if progress is not None:
            progress(done, len(messages))
