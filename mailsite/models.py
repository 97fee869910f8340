"""Shared models: the append-only domain event log.

The log sits below every app so that each of them can append to it (``mailsite.events``);
campaign workflows and analytics export read it. Rows are never updated or deleted: a
database trigger refuses both (see migration 0002). Each row also carries the id of the
transaction that wrote it, in a column only the database writes (``txid``, migration 0006), for
the live updates' catch-up cursor.
"""

from django.db import models


class DomainEvent(models.Model):
    class Type(models.TextChoices):
        MESSAGE_RECEIVED = "message.received"
        MESSAGE_SENT = "message.sent"
        DELIVERY_STATUS_CHANGED = "delivery.status_changed"
        RECEIPT_QUARANTINED = "receipt.quarantined"
        # Changes to a conversation, one event per thread (subject "thread"); the payload carries
        # ``thread_id`` and the ``message_ids`` concerned, ``merged_into`` for a thread merged away.
        MESSAGES_READ = "messages.read"
        MESSAGES_UNREAD = "messages.unread"
        MESSAGES_STARRED = "messages.starred"
        MESSAGES_UNSTARRED = "messages.unstarred"
        MESSAGES_LABELLED = "messages.labelled"
        MESSAGES_UNLABELLED = "messages.unlabelled"
        MESSAGES_MOVED = "messages.moved"
        MESSAGES_TRASHED = "messages.trashed"
        MESSAGES_RESTORED = "messages.restored"
        MESSAGES_DELETED = "messages.deleted"
        THREAD_MERGED = "thread.merged"
        THREAD_SPLIT = "thread.split"
        THREAD_REPAIRED = "thread.repaired"
        # A user label deleted (subject "label"): its chips and sidebar entry go from open tabs.
        LABEL_DELETED = "label.deleted"
        # A user label created, renamed or recoloured (subject "label"): open tabs redraw it.
        LABEL_CHANGED = "label.changed"

    id = models.BigAutoField(primary_key=True)
    event_type = models.CharField(max_length=64, choices=Type.choices)
    # The partition key of the mailbox the event belongs to; null for installation-wide events.
    mailbox_id = models.BigIntegerField(null=True, blank=True)
    # Which channel or campaign the subject came from (e.g. "smtp", "esp:mailgun", "campaign:12").
    source_tag = models.CharField(max_length=100, blank=True)
    subject_type = models.CharField(max_length=64, help_text="e.g. message, delivery")
    subject_id = models.BigIntegerField()
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(db_index=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["event_type", "id"], name="domainevent_type_id"),
            models.Index(fields=["mailbox_id", "id"], name="domainevent_mailbox_id"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.subject_type}#{self.subject_id}"
