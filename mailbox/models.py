from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models.functions import Lower
from django.utils.functional import cached_property


class Domain(models.Model):
    """A mail domain this installation receives for and sends from."""

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=253)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("name"), name="domain_unique_name"),
            models.CheckConstraint(condition=models.Q(name=Lower("name")), name="domain_name_lowercase"),
        ]

    def __str__(self) -> str:
        return self.name


class Mailbox(models.Model):
    """A user's mailbox. Its id is the partition key carried by every per-user row."""

    id = models.BigAutoField(primary_key=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailbox")
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="mailboxes")
    local_part = models.CharField(max_length=64)
    address = models.CharField(max_length=320, help_text="Primary address, lowercase.")
    display_name = models.CharField(max_length=255, blank=True)
    keyboard_shortcuts = models.BooleanField(default=True, help_text="Gmail-style keys in the web UI.")
    signature = models.TextField(blank=True, help_text="Added below new messages, replies and forwards.")
    created_at = models.DateTimeField(auto_now_add=True)

    class RemoteImages(models.TextChoices):
        ASK = "ask", "Ask before showing remote images"
        ALWAYS = "always", "Always show remote images (through the image proxy)"

    remote_images = models.CharField(max_length=10, choices=RemoteImages.choices, default=RemoteImages.ASK)
    timezone = models.CharField(
        max_length=64,
        blank=True,
        help_text="IANA time zone (e.g. Europe/Paris) of Send later times and the Scheduled view; "
        "empty: the browser's, else UTC.",
    )

    class Meta:
        verbose_name_plural = "mailboxes"
        constraints = [
            models.UniqueConstraint(fields=["address"], name="mailbox_unique_address"),
            models.CheckConstraint(condition=models.Q(address=Lower("address")), name="mailbox_address_lowercase"),
        ]

    def __str__(self) -> str:
        return self.address

    @cached_property
    def own_addresses(self) -> frozenset[str]:
        """The primary address and the aliases ("me" in a thread list). ``mailbox.auth`` loads them
        with the request's user, in the same query; elsewhere the first use reads the aliases."""
        return frozenset({self.address, *self.aliases.values_list("address", flat=True)})


class Alias(models.Model):
    """Another address delivering into a mailbox."""

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="aliases")
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="aliases")
    address = models.CharField(max_length=320)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "aliases"
        constraints = [
            models.UniqueConstraint(fields=["address"], name="alias_unique_address"),
            models.CheckConstraint(condition=models.Q(address=Lower("address")), name="alias_address_lowercase"),
        ]

    def __str__(self) -> str:
        return f"{self.address} → {self.mailbox_id}"


class Contact(models.Model):
    """An address a mailbox has corresponded with, for autocomplete and display names."""

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="contacts")
    address = models.CharField(max_length=320, help_text="Normalised: lowercase.")
    display_name = models.CharField(max_length=255, blank=True)
    times_contacted = models.PositiveIntegerField(default=0)
    last_contacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "address"], name="contact_unique_per_mailbox"),
        ]
        indexes = [
            models.Index("mailbox", models.F("times_contacted").desc(), name="contact_mailbox_frequent"),
            # Autocomplete: prefix matches on the (lowercase) address and the lowercased name.
            models.Index(
                models.F("mailbox"),
                OpClass(models.F("address"), name="varchar_pattern_ops"),
                name="contact_address_prefix",
            ),
            models.Index(
                models.F("mailbox"), OpClass(Lower("display_name"), name="text_pattern_ops"), name="contact_name_prefix"
            ),
            # Autocomplete: a word of the name starting with the query (selectors_drafts.NAME_WORDS).
            GinIndex(SearchVector("display_name", config="simple"), name="contact_name_words"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} <{self.address}>" if self.display_name else self.address


class Message(models.Model):
    """One mailbox's copy of a message: metadata only; bodies live in MessageBody, bytes in a Blob."""

    class SpamVerdict(models.TextChoices):
        UNKNOWN = "unknown"
        HAM = "ham"
        SPAM = "spam"

    class ThreadReason(models.TextChoices):
        REFERENCE = "reference", "In-Reply-To/References"
        SUBJECT = "subject", "Subject and participants"
        MANUAL = "manual", "Moved by the user"
        NEW = "new", "Started a new thread"

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="messages")
    thread = models.ForeignKey("threads.Thread", on_delete=models.PROTECT, related_name="+")
    thread_reason = models.CharField(max_length=20, choices=ThreadReason.choices, default=ThreadReason.NEW)
    blob = models.ForeignKey(
        "delivery.Blob",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="The raw .eml; only an unsaved draft has none.",
    )
    receipt = models.ForeignKey(
        "delivery.InboundReceipt", on_delete=models.SET_NULL, related_name="+", null=True, blank=True
    )
    message_id = models.CharField(max_length=998, help_text="RFC 5322 Message-ID, without angle brackets.")
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = ArrayField(models.CharField(max_length=998), default=list, blank=True)
    subject = models.TextField(blank=True)
    normalized_subject = models.CharField(max_length=255, blank=True)
    from_address = models.CharField(max_length=320, blank=True)
    from_name = models.CharField(max_length=255, blank=True)
    list_id = models.CharField(max_length=255, blank=True)
    list_unsubscribe = models.TextField(blank=True)
    authentication_results = models.JSONField(
        default=dict, blank=True, help_text='SPF/DKIM/DMARC results, e.g. {"spf": "pass", "dmarc": "fail"}.'
    )
    date = models.DateTimeField(help_text="The Date header, or the receive time when absent or absurd.")
    received_at = models.DateTimeField()
    snippet = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    has_attachments = models.BooleanField(default=False)
    is_read = models.BooleanField(default=False)
    is_starred = models.BooleanField(default=False)
    is_draft = models.BooleanField(default=False)
    # Whether the sanitiser blocked remote content (images, CSS url(), …) in the body: recorded when
    # the body is rendered with remote images off, so the conversation page offers "Show remote
    # images" only where it changes something. None until then.
    remote_content = models.BooleanField(null=True, blank=True, editable=False)
    # How tall the rendered body is, roughly, in lines (rendering.height): the conversation page sizes
    # the body's iframe with it. Written at delivery; None for older mail until its body is first shown.
    body_lines = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    spam_verdict = models.CharField(max_length=10, choices=SpamVerdict.choices, default=SpamVerdict.UNKNOWN)
    spam_score = models.FloatField(null=True, blank=True)
    source_tag = models.CharField(max_length=100, blank=True, help_text="e.g. smtp, esp:mailgun, import, campaign:12")
    # Full-text search (mailbox.search.indexing): written with the row at delivery, never changed.
    search_document = SearchVectorField(null=True, editable=False)
    address_document = SearchVectorField(null=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "blob"], name="message_unique_blob_per_mailbox"),
            models.CheckConstraint(
                condition=models.Q(blob__isnull=False) | models.Q(is_draft=True), name="message_blob_unless_draft"
            ),
        ]
        indexes = [
            models.Index(fields=["mailbox", "message_id"], name="message_mailbox_msgid"),
            # Conversation view: a thread's messages in date order.
            models.Index(fields=["thread", "date", "id"], name="message_thread_date"),
            models.Index("mailbox", models.F("date").desc(), name="message_mailbox_date"),
            # Search: GIN led by the mailbox (btree_gin), so a term common in other mailboxes costs nothing.
            GinIndex(fields=["mailbox", "search_document"], name="message_search_gin"),
            GinIndex(fields=["mailbox", "address_document"], name="message_address_gin"),
        ]

    def __str__(self) -> str:
        return self.subject or "(no subject)"


class Participant(models.Model):
    """An address in one of a message's address headers, one row per address and role."""

    class Role(models.TextChoices):
        FROM = "from"
        SENDER = "sender"
        REPLY_TO = "reply_to", "Reply-To"
        TO = "to"
        CC = "cc"
        BCC = "bcc"
        DELIVERED_TO = "delivered_to", "Delivered-To"

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="participants")
    role = models.CharField(max_length=20, choices=Role.choices)
    address = models.CharField(max_length=320, help_text="Normalised: lowercase.")
    display_name = models.CharField(max_length=255, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            # from:/to:/cc: search within a mailbox.
            models.Index(fields=["mailbox", "address", "role"], name="participant_mailbox_address"),
            models.Index(fields=["message", "role", "position"], name="participant_message"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.address}"


class MessageBody(models.Model):
    """The decoded bodies, in their own table so lists never load them."""

    message = models.OneToOneField(Message, on_delete=models.CASCADE, primary_key=True, related_name="body")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    text = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text="As received; sanitised only when rendered.")

    class Meta:
        verbose_name_plural = "message bodies"

    def __str__(self) -> str:
        return f"body of message {self.message_id}"


class Attachment(models.Model):
    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    blob = models.ForeignKey("delivery.Blob", on_delete=models.PROTECT, related_name="+")
    filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)
    content_id = models.CharField(max_length=998, blank=True, help_text="For inline cid: images.")
    is_inline = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["message", "position"], name="attachment_message")]

    def __str__(self) -> str:
        return self.filename or f"attachment {self.id}"


class Label(models.Model):
    """A system folder (Inbox, Sent, Drafts, Spam, Trash) or a user label with a colour."""

    class Role(models.TextChoices):
        INBOX = "inbox"
        SENT = "sent"
        DRAFTS = "drafts"
        SPAM = "spam"
        TRASH = "trash"

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=Role.choices, blank=True, help_text="Set for system labels.")
    colour = models.CharField(max_length=7, blank=True, help_text="#rrggbb")
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint("mailbox", Lower("name"), name="label_unique_name_per_mailbox"),
            models.UniqueConstraint(
                fields=["mailbox", "role"], condition=~models.Q(role=""), name="label_unique_role_per_mailbox"
            ),
            models.CheckConstraint(
                condition=models.Q(colour="") | models.Q(colour__regex=r"^#[0-9a-fA-F]{6}$"), name="label_colour_hex"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_system(self) -> bool:
        return bool(self.role)


class MessageLabel(models.Model):
    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="message_labels")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="message_labels")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "label"], name="messagelabel_unique")]
        indexes = [models.Index(fields=["label"], name="messagelabel_label")]

    def __str__(self) -> str:
        return f"{self.label_id} on {self.message_id}"


class ThreadLabel(models.Model):
    """A thread's membership in a label, denormalised so a label's thread list is one index range.

    Kept by the mailbox services whenever messages, labels or thread summaries change.
    """

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="thread_labels")
    thread = models.ForeignKey("threads.Thread", on_delete=models.CASCADE, related_name="+")
    message_count = models.PositiveIntegerField(default=0, help_text="Messages of the thread under this label.")
    unread_count = models.PositiveIntegerField(default=0, help_text="Unread messages of the thread under this label.")
    last_message_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["label", "thread"], name="threadlabel_unique"),
            models.CheckConstraint(
                condition=models.Q(unread_count__lte=models.F("message_count")), name="threadlabel_unread_within_count"
            ),
        ]
        indexes = [
            # A label's thread list, newest first, keyset-paginated on (last_message_at, thread).
            models.Index(
                "mailbox",
                "label",
                models.F("last_message_at").desc(),
                models.F("thread").desc(),
                name="threadlabel_list",
            ),
            # Unread counts per label: an index-only count over the unread rows alone.
            models.Index(
                fields=["mailbox", "label"], name="threadlabel_unread", condition=models.Q(unread_count__gt=0)
            ),
            models.Index(fields=["thread"], name="threadlabel_thread"),
        ]

    def __str__(self) -> str:
        return f"thread {self.thread_id} in label {self.label_id}"


class MergedThread(models.Model):
    """A conversation of the mailbox that is gone because its messages went into another one (merged
    by the user or the resolver, or emptied by a move): its old address leads to the one it went
    into. When that one goes the same way, the rows pointing at it are re-pointed, so one indexed
    look-up finds where an old bookmark's conversation is now.

    Plain ids, not foreign keys: the old thread no longer exists, and the one merged into may be
    deleted later (its old address then answers 404 like any unknown one).
    """

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    thread_id = models.BigIntegerField(help_text="The id of the conversation merged away.")
    merged_into = models.BigIntegerField(help_text="The id of the conversation its messages are in now.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailbox", "thread_id"], name="mergedthread_unique")]
        indexes = [models.Index(fields=["mailbox", "merged_into"], name="mergedthread_into")]

    def __str__(self) -> str:
        return f"thread {self.thread_id} merged into {self.merged_into}"


class Draft(models.Model):
    """A message being written: what was typed, as typed (addresses are checked, never rewritten).

    ``version`` grows by one on every save; a save that names an older version is refused, so two
    tabs editing the same draft cannot silently overwrite each other.
    """

    class Mode(models.TextChoices):
        NEW = "new"
        REPLY = "reply"
        REPLY_ALL = "reply_all", "Reply all"
        FORWARD = "forward"

    class BodyFormat(models.TextChoices):
        PLAIN = "plain", "Plain text"
        MARKDOWN = "markdown", "Simple formatting"

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="drafts")
    thread = models.ForeignKey("threads.Thread", on_delete=models.SET_NULL, related_name="+", null=True, blank=True)
    reply_to = models.ForeignKey(Message, on_delete=models.SET_NULL, related_name="+", null=True, blank=True)
    forward_of = models.ForeignKey(Message, on_delete=models.SET_NULL, related_name="+", null=True, blank=True)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.NEW)
    to = models.TextField(blank=True, help_text="Comma-separated, as typed.")
    cc = models.TextField(blank=True)
    bcc = models.TextField(blank=True)
    subject = models.TextField(blank=True)
    body = models.TextField(blank=True)
    body_format = models.CharField(max_length=10, choices=BodyFormat.choices, default=BodyFormat.PLAIN)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The drafts list, newest first, keyset-paginated on (updated_at, id).
            models.Index("mailbox", models.F("updated_at").desc(), models.F("id").desc(), name="draft_mailbox_recent"),
        ]

    def __str__(self) -> str:
        return self.subject or "(no subject)"


class DraftAttachment(models.Model):
    """A file attached to a draft; the bytes are a shared Blob (a forward reuses the original's)."""

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="attachments")
    blob = models.ForeignKey("delivery.Blob", on_delete=models.PROTECT, related_name="+")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["draft", "id"], name="draftattachment_draft")]

    def __str__(self) -> str:
        return self.filename


class RemoteImageSender(models.Model):
    """A sender whose remote images this mailbox always shows (through the image proxy)."""

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=320, help_text="Normalised: lowercase.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "address"], name="remoteimagesender_unique_per_mailbox"),
            models.CheckConstraint(
                condition=models.Q(address=Lower("address")), name="remoteimagesender_address_lowercase"
            ),
        ]

    def __str__(self) -> str:
        return f"images from {self.address} in {self.mailbox_id}"
