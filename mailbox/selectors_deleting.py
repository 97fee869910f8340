"""Reads for the confirmation of irreversible deletes: how much a delete would remove, so the
page asking "are you sure?" can say it. Scoped to the user's mailbox like every other read."""

from dataclasses import dataclass

from django.db.models import Count, Sum

from mailbox.models import Label, Mailbox, Message, ThreadLabel


@dataclass(frozen=True)
class DeletionScope:
    threads: int
    messages: int


def threads_deletion_scope(*, mailbox: Mailbox, thread_ids: list[int]) -> DeletionScope:
    """The mailbox's conversations among ``thread_ids`` and all their messages ("Delete forever")."""
    counts = Message.objects.filter(mailbox=mailbox, thread_id__in=thread_ids).aggregate(
        threads=Count("thread_id", distinct=True), messages=Count("id")
    )
    return DeletionScope(threads=counts["threads"], messages=counts["messages"])


def trash_deletion_scope(*, mailbox: Mailbox) -> DeletionScope:
    """The conversations with messages in Trash, and those messages ("Empty Trash")."""
    counts = ThreadLabel.objects.filter(mailbox=mailbox, label__role=Label.Role.TRASH).aggregate(
        threads=Count("id"), messages=Sum("message_count")
    )
    return DeletionScope(threads=counts["threads"], messages=counts["messages"] or 0)


def label_thread_count(*, mailbox: Mailbox, label: Label) -> int:
    """How many of the mailbox's conversations carry ``label``."""
    return ThreadLabel.objects.filter(mailbox=mailbox, label=label).count()
