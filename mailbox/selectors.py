"""Reads of the mailbox app. Every user-triggered read is scoped to the user's own mailbox."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Count, Q

from mailbox.models import Alias, Domain, Label, Mailbox, ThreadLabel
from threads.models import Thread

PAGE_SIZE = 50


@dataclass(frozen=True)
class Cursor:
    """A keyset position in a thread list: the (last_message_at, thread id) of a row."""

    last_message_at: datetime
    thread_id: int

    def encode(self) -> str:
        return f"{self.last_message_at.isoformat()}_{self.thread_id}"

    @classmethod
    def decode(cls, value: str) -> "Cursor | None":
        """Parse a cursor from a query string; ``None`` for anything malformed."""
        stamp, _, thread_id = value.rpartition("_")
        try:
            when = datetime.fromisoformat(stamp)
            return cls(when, int(thread_id)) if when.tzinfo else None
        except ValueError:
            return None


@dataclass(frozen=True)
class ThreadPage:
    threads: list[Thread]
    older: Cursor | None


def mailbox_get_for_user(*, user: AbstractBaseUser) -> Mailbox | None:
    return Mailbox.objects.filter(user_id=user.pk).first()


def label_get_by_role(*, mailbox: Mailbox, role: str) -> Label:
    return Label.objects.get(mailbox=mailbox, role=role)


def thread_list_for_label(*, mailbox: Mailbox, label: Label, older_than: Cursor | None = None) -> ThreadPage:
    """One page of a label's threads, newest first, by keyset on the label's thread index."""
    rows = ThreadLabel.objects.filter(mailbox=mailbox, label=label)
    if older_than is not None:
        rows = rows.filter(
            Q(last_message_at__lt=older_than.last_message_at)
            | Q(last_message_at=older_than.last_message_at, thread_id__lt=older_than.thread_id)
        )
    page = list(rows.select_related("thread").order_by("-last_message_at", "-thread_id")[: PAGE_SIZE + 1])
    older = (
        Cursor(page[PAGE_SIZE - 1].last_message_at, page[PAGE_SIZE - 1].thread_id) if len(page) > PAGE_SIZE else None
    )
    return ThreadPage(threads=[row.thread for row in page[:PAGE_SIZE]], older=older)


def label_unread_counts(*, mailbox: Mailbox) -> dict[int, int]:
    """Unread threads per label id, counted over the partial index of unread rows."""
    rows = (
        ThreadLabel.objects.filter(mailbox=mailbox, unread_count__gt=0).values("label_id").annotate(unread=Count("id"))
    )
    return {row["label_id"]: row["unread"] for row in rows}


def label_get_for_mailbox(*, mailbox: Mailbox, label_id: int) -> Label | None:
    return Label.objects.filter(mailbox=mailbox, pk=label_id).first()


def label_list(*, mailbox: Mailbox) -> list[Label]:
    return list(Label.objects.filter(mailbox=mailbox))


def mailboxes_for_addresses(*, addresses: list[str]) -> tuple[list[Mailbox], list[str]]:
    """The local mailboxes the addresses deliver to (primary or alias), and the addresses that are
    on one of our domains but match no mailbox. Foreign addresses are in neither list."""
    wanted = {a.strip().lower() for a in addresses if a.strip()}
    by_address = {m.address: m for m in Mailbox.objects.filter(address__in=wanted)}
    for alias in Alias.objects.filter(address__in=wanted - by_address.keys()).select_related("mailbox"):
        by_address[alias.address] = alias.mailbox
    unmatched = wanted - by_address.keys()
    local_domains = set(
        Domain.objects.filter(name__in={a.rpartition("@")[2] for a in unmatched}, is_active=True).values_list(
            "name", flat=True
        )
    )
    unknown = sorted(a for a in unmatched if a.rpartition("@")[2] in local_domains)
    mailboxes = list({m.id: m for m in by_address.values()}.values())
    return mailboxes, unknown
