from django.contrib.postgres.indexes import GinIndex
from django.db import models


class Thread(models.Model):
    """A conversation in one mailbox, with a summary kept current on every change.

    The summary lets every thread list be a metadata query on this table alone.
    """

    id = models.BigAutoField(primary_key=True)
    mailbox_id = models.BigIntegerField(help_text="Partition key: the owning mailbox.")
    subject = models.TextField(blank=True)
    normalized_subject = models.CharField(max_length=255, blank=True)
    list_id = models.CharField(max_length=255, blank=True, help_text="List-Id of mailing-list threads.")
    # Display senders: the first, then the others by their latest message (threads.services.summaries.
    # participants_add): [{"name": ..., "address": ...}, ...], capped.
    participants = models.JSONField(default=list, blank=True)
    participant_addresses = models.JSONField(default=list, blank=True)
    # Every address the thread's messages were from or to, except the mailbox's own: the resolver's
    # participant-overlap test. Sorted; capped to the alphabetically first MAX_CORRESPONDENTS, a rule
    # an incremental add and a recount from the messages both reproduce.
    correspondents = models.JSONField(default=list, blank=True)
    is_manual = models.BooleanField(
        default=False,
        help_text="The user split or moved messages into this thread: automatic merges leave it alone.",
    )
    is_fragment = models.BooleanField(
        default=False,
        help_text="Started by a reply without headers that matched no thread: the next thread of its "
        "subject and correspondents adopts it, so subject joins do not depend on arrival order.",
    )
    message_count = models.PositiveIntegerField(default=0)
    unread_count = models.PositiveIntegerField(default=0)
    starred_count = models.PositiveIntegerField(default=0)
    has_attachments = models.BooleanField(default=False)
    snippet = models.CharField(max_length=255, blank=True)
    first_message_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # "All mail", newest first, keyset-paginated on (last_message_at, id).
            models.Index(
                "mailbox_id", models.F("last_message_at").desc(), models.F("id").desc(), name="thread_mailbox_recent"
            ),
            # Subject fallback of the resolver: recent threads with the same normalised subject.
            models.Index(
                "mailbox_id", "normalized_subject", models.F("last_message_at").desc(), name="thread_mailbox_subject"
            ),
            # Every new conversation looks for fragments to adopt: a tiny index of fragments alone keeps
            # that look-up off the big subject index (and its pages out of the cache).
            models.Index(
                "mailbox_id",
                "normalized_subject",
                models.F("last_message_at").desc(),
                name="thread_mailbox_fragment",
                condition=models.Q(is_fragment=True),
            ),
            models.Index(
                "mailbox_id",
                models.F("last_message_at").desc(),
                models.F("id").desc(),
                name="thread_mailbox_starred",
                condition=models.Q(starred_count__gt=0),
            ),
            GinIndex(fields=["participant_addresses"], name="thread_participants_gin"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(unread_count__lte=models.F("message_count"))
                & models.Q(starred_count__lte=models.F("message_count")),
                name="thread_counts_within_message_count",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or "(no subject)"


class ThreadMessageId(models.Model):
    """Maps a Message-ID seen in a mailbox (its own or only referenced) to the thread holding it.

    Referenced ids that have not arrived yet are kept too, so a late parent finds the replies
    that came before it. Branch keys live here as well: ``"<bulk Message-ID> <correspondent>"``
    maps one correspondent's private replies to bulk mail to their own conversation (a space
    never occurs in a Message-ID, so the two kinds of key cannot collide).
    """

    id = models.BigAutoField(primary_key=True)
    mailbox_id = models.BigIntegerField()
    message_id = models.CharField(max_length=998)
    # Indexed by the foreign key alone: a second index on it would double every insert's work there.
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="message_ids")
    seen = models.BooleanField(default=False, help_text="True once a message with this id is in the mailbox.")
    # Set with ``seen``: who sent the message ("" for the mailbox's own address) and whether it went
    # to many recipients, which makes replies from different people separate conversations.
    sender = models.CharField(max_length=320, blank=True)
    is_bulk = models.BooleanField(default=False)
    # A subject join is a guess that later headers may confirm or contradict. Until then, the ids it
    # brought into the thread (the message's own and its unknown In-Reply-To, and those of replies
    # placed only through them) carry the Message-ID of the message that joined by subject.
    subject_anchor = models.CharField(
        max_length=998,
        blank=True,
        help_text="Set while this id is in its thread by a subject join only: the Message-ID of the message "
        "that joined. Cleared when headers confirm the join; when headers link it to another conversation, "
        "every id (and message) of the anchor moves there, rather than the two threads merging.",
    )

    class Meta:
        indexes = [
            # Only the few ids of unconfirmed subject joins: confirming or moving one is an index look-up.
            models.Index(
                "mailbox_id",
                "subject_anchor",
                name="threadmessageid_subject_anchor",
                condition=~models.Q(subject_anchor=""),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["mailbox_id", "message_id"], name="threadmessageid_unique_per_mailbox"),
        ]

    def __str__(self) -> str:
        return self.message_id
