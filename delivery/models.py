from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Coalesce, Lower


class Blob(models.Model):
    """Immutable bytes in object storage, keyed by their sha256: raw messages and attachments.

    Shared by every mailbox holding the same bytes. A database trigger refuses updates of the
    content columns (migration 0002); nothing in the pipeline deletes a blob.
    """

    id = models.BigAutoField(primary_key=True)
    sha256 = models.CharField(max_length=64, unique=True)
    size = models.BigIntegerField()
    storage_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(sha256__regex=r"^[0-9a-f]{64}$"), name="blob_sha256_hex"),
            models.CheckConstraint(condition=models.Q(size__gte=0), name="blob_size_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.size} bytes)"


class InboundReceipt(models.Model):
    """One arrival of raw mail from a channel, before and after it is parsed into mailboxes."""

    class Source(models.TextChoices):
        ESP_WEBHOOK = "esp_webhook", "ESP webhook"
        SMTP = "smtp", "SMTP listener"
        IMPORT = "import", "Import"
        LOCAL = "local", "Sent from this installation"

    class Status(models.TextChoices):
        RECEIVED = "received"
        PARSED = "parsed"
        FAILED = "failed"
        QUARANTINED = "quarantined"

    id = models.BigAutoField(primary_key=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    esp = models.CharField(max_length=50, blank=True, help_text="Anymail ESP name, for webhooks.")
    # The channel's own id for this arrival (ESP event id, SMTP queue id, import key):
    # a retry of the same arrival hits the unique constraint instead of doubling.
    event_id = models.CharField(max_length=255, blank=True)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="receipts")
    envelope_sender = models.CharField(max_length=998, blank=True)
    envelope_recipients = ArrayField(models.CharField(max_length=998), default=list, blank=True)
    # ESP and authentication verdicts as reported: {"spam": ..., "virus": ..., "spf": ..., "dkim": ..., "dmarc": ...}
    verdicts = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    # When the next try is due, if its task is waiting out a back-off or was re-queued by the
    # sweeper; null: as soon as it arrived. The sweeper waits this long (and more) before queueing again.
    retry_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Envelope recipients in one of our domains that no mailbox or alias answers to: recorded when
    # parsed (the copies for the others are delivered), for staff to find and follow up.
    unknown_recipients = ArrayField(models.CharField(max_length=998), default=list, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    # Channel extras applied when the receipt is parsed, e.g. an import's labels and read state.
    metadata = models.JSONField(default=dict, blank=True)
    parsed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "esp", "event_id"],
                condition=~models.Q(event_id=""),
                name="receipt_unique_event_per_channel",
            ),
        ]
        indexes = [
            # The claim's question: which receipts are still waiting, oldest first?
            models.Index(fields=["received_at"], name="receipt_pending", condition=models.Q(status="received")),
            # The sweeper's: which are still waiting long after their try was due?
            models.Index(
                Coalesce("retry_at", "received_at"), name="receipt_overdue", condition=models.Q(status="received")
            ),
            models.Index(fields=["status", "-received_at"], name="receipt_status_recent"),
            # Admin's unknown-recipient filter: the few receipts that have any, newest first.
            models.Index(
                fields=["-received_at"], name="receipt_unknown_recent", condition=~models.Q(unknown_recipients=[])
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} receipt #{self.id} ({self.status})"


class OutboundDelivery(models.Model):
    """One message on its way to one recipient, from queued to a final status."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        DELIVERED = "delivered"
        DEFERRED = "deferred"
        BOUNCED = "bounced"
        REJECTED = "rejected"
        FAILED = "failed"
        COMPLAINED = "complained"
        DEAD = "dead", "Dead letter"
        CANCELLED = "cancelled"

    id = models.BigAutoField(primary_key=True)
    mailbox_id = models.BigIntegerField(help_text="Partition key: the sending mailbox.")
    message_id = models.BigIntegerField(help_text="The sender's copy (mailbox.Message id).")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="outbound_deliveries")
    envelope_sender = models.CharField(max_length=998)
    recipient = models.CharField(max_length=998)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    source_tag = models.CharField(max_length=100, blank=True)
    send_after = models.DateTimeField(help_text="Not handed to the ESP before this (undo send, send later).")
    attempt_id = models.UUIDField(null=True, blank=True, help_text="Idempotency key of the current attempt.")
    is_local = models.BooleanField(default=False, help_text="To a mailbox of ours: delivered by the ingest path.")
    rfc_message_id = models.CharField(
        max_length=998, blank=True, help_text="The Message-ID sent, without angle brackets: matches bounces."
    )
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When a send task was last queued for it (the sweeper waits a lease)."
    )
    handed_off_at = models.DateTimeField(null=True, blank=True, help_text="When the ESP or relay accepted it.")
    attempts = models.PositiveIntegerField(default=0)
    esp = models.CharField(max_length=50, blank=True)
    esp_message_id = models.CharField(max_length=255, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "outbound deliveries"
        indexes = [
            models.Index(fields=["mailbox_id", "message_id"], name="outbound_mailbox_message"),
            # The release/sweeper query: due deliveries still waiting to be handed off.
            models.Index(
                fields=["send_after"],
                name="outbound_due",
                condition=models.Q(status__in=["scheduled", "queued"]),
            ),
            models.Index(fields=["esp", "esp_message_id"], name="outbound_esp_message"),
            models.Index(fields=["rfc_message_id"], name="outbound_rfc_message_id"),
            # Claimed attempts whose worker may have died: the sweeper dead-letters them after a lease.
            models.Index(fields=["updated_at"], name="outbound_sending", condition=models.Q(status="sending")),
            models.Index(fields=["status", "-updated_at"], name="outbound_status_recent"),
        ]

    def __str__(self) -> str:
        return f"to {self.recipient} ({self.status})"


class DeliveryEvent(models.Model):
    """What happened to an outbound delivery, as we or the ESP's tracking webhook reported it."""

    class Type(models.TextChoices):
        QUEUED = "queued"
        SENT = "sent"
        DELIVERED = "delivered"
        DEFERRED = "deferred"
        BOUNCED = "bounced"
        REJECTED = "rejected"
        FAILED = "failed"
        COMPLAINED = "complained"
        UNSUBSCRIBED = "unsubscribed"
        OPENED = "opened"
        CLICKED = "clicked"

    id = models.BigAutoField(primary_key=True)
    mailbox_id = models.BigIntegerField()
    delivery = models.ForeignKey(OutboundDelivery, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=20, choices=Type.choices)
    esp = models.CharField(max_length=50, blank=True)
    esp_event_id = models.CharField(max_length=255, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    mta_response = models.TextField(blank=True)
    description = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["esp", "esp_event_id"],
                condition=~models.Q(esp_event_id=""),
                name="deliveryevent_unique_esp_event",
            ),
        ]
        indexes = [models.Index(fields=["delivery", "occurred_at"], name="deliveryevent_timeline")]

    def __str__(self) -> str:
        return f"{self.event_type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class Suppression(models.Model):
    """An address we must not send to: hard bounce, complaint, unsubscribe or staff decision."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint"
        UNSUBSCRIBE = "unsubscribe"
        MANUAL = "manual"

    id = models.BigAutoField(primary_key=True)
    address = models.CharField(max_length=320, help_text="Lowercase.")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    source = models.CharField(max_length=100, blank=True, help_text="e.g. esp:mailgun, dsn, admin")
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["address"], name="suppression_unique_address"),
            models.CheckConstraint(condition=models.Q(address=Lower("address")), name="suppression_address_lowercase"),
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"
