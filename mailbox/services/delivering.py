"""Writes that put messages into mailboxes."""

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, When
from django.utils import timezone

from delivery.models import Blob, InboundReceipt
from delivery.services import blob_store
from mailbox.models import (
    Alias,
    Attachment,
    Label,
    Mailbox,
    Message,
    MessageBody,
    MessageLabel,
    Participant,
    ThreadLabel,
)
from mailbox.parsing import ParsedMessage, parse_message
from mailbox.search.indexing import search_documents
from mailbox.services.conversations import Correspondence, correspondence_of, message_thread_resolve
from mailbox.services.labels import label_get_or_create
from mailsite.models import DomainEvent
from mailsite.realtime import mailbox_publish_on_commit
from threads.models import Thread
from threads.services import SummaryDelta, thread_add_message_summary

logger = structlog.get_logger(__name__)

# Advisory lock space (first key of the two-key form) of "deliveries into mailbox <second key>".
_DELIVERY_LOCK_SPACE = 0x6D62
_DELIVERY_LOCK_SQL = "SELECT {function}(%s, id) FROM unnest(%s::int[]) AS id ORDER BY id"


def mailbox_deliveries_lock(*, mailbox_ids: list[int], exclusive: bool) -> None:
    """Hold the mailboxes' delivery locks until the transaction ends, in id order.

    A batch holds them exclusively, a single delivery shared: a batch places many messages before
    it commits, and two of those, or a batch and a single delivery, taking the thread resolver's
    locks for one mailbox in different orders would deadlock. Single deliveries still run side by side.
    """
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(_DELIVERY_LOCK_SQL.format(function=function), [_DELIVERY_LOCK_SPACE, sorted(set(mailbox_ids))])


@dataclass(frozen=True)
class Delivered:
    message: Message
    created: bool


@dataclass
class MailboxContext:
    """What every delivery into one mailbox reads: its own addresses and its labels. Loaded once
    per batch of deliveries instead of once per message."""

    mailbox: Mailbox
    own: frozenset[str]
    labels_by_role: dict[str, Label]
    labels_by_name: dict[str, Label]
    # Message-IDs known to be held by a message of the mailbox (``taken``), among those looked up.
    taken: set[str] = field(default_factory=set)
    looked_up: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, mailbox: Mailbox) -> "MailboxContext":
        own = frozenset({mailbox.address, *Alias.objects.filter(mailbox=mailbox).values_list("address", flat=True)})
        labels = list(Label.objects.filter(mailbox=mailbox))
        return cls(
            mailbox=mailbox,
            own=own,
            labels_by_role={label.role: label for label in labels if label.role},
            labels_by_name={label.name.lower(): label for label in labels},
        )

    def message_ids_look_up(self, message_ids: set[str]) -> None:
        """Learn which of ``message_ids`` the mailbox's messages already hold (one query)."""
        wanted = message_ids - self.looked_up
        if wanted:
            held = Message.objects.filter(mailbox=self.mailbox, message_id__in=wanted)
            self.taken.update(held.values_list("message_id", flat=True))
            self.looked_up.update(wanted)

    def own_message_id(self, copy: "Copy") -> str:
        """The copy's identity in the mailbox: its Message-ID, unless another message of the mailbox
        (other bytes: a byte-identical copy never gets this far) already holds it. Then an id made
        from the original and the bytes' hash, stable across re-deliveries; the original header
        stays in the raw message and readable in the made-up id."""
        message_id = copy.parsed.message_id
        self.message_ids_look_up({message_id})
        if message_id not in self.taken:
            return message_id
        local, _, domain = message_id.rpartition("@")
        return f"{local or message_id}.dup-{copy.blob.sha256[:16]}@{domain or 'mailsite.invalid'}"[:998]

    def labels_for(self, *, roles: tuple[str, ...], names: tuple[str, ...]) -> list[Label]:
        """The system labels named by role and the user labels by name (created when new)."""
        found = [self.labels_by_role[role] for role in roles if role in self.labels_by_role]
        for name in names:
            key = " ".join(name.split())[:100].lower()
            if key not in self.labels_by_name:
                self.labels_by_name[key] = label_get_or_create(mailbox=self.mailbox, name=name)
            found.append(self.labels_by_name[key])
        return list({label.id: label for label in found}.values())


@dataclass
class DeferredRows:
    """Rows nothing reads before the batch commits (bodies, domain events), inserted together."""

    bodies: list[MessageBody] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)
    # Events also pushed to the mailbox's open tabs once committed (their ids exist after the insert).
    published: list[DomainEvent] = field(default_factory=list)

    def flush(self) -> None:
        MessageBody.objects.bulk_create(self.bodies)
        DomainEvent.objects.bulk_create(self.events)
        for event in self.published:
            mailbox_publish_on_commit(
                mailbox_id=event.mailbox_id,
                event={"type": "thread.updated", "thread_id": event.payload["thread_id"], "event_id": event.id},
            )
        self.bodies.clear()
        self.events.clear()
        self.published.clear()


@dataclass(frozen=True)
class Copy:
    """One message to deliver into one mailbox, with how the channel filed it."""

    blob: Blob
    parsed: ParsedMessage
    source_tag: str
    label_roles: tuple[str, ...] = (Label.Role.INBOX,)
    user_labels: tuple[str, ...] = ()
    is_read: bool = False
    is_starred: bool = False
    receipt: InboundReceipt | None = None
    received_at: datetime | None = None


@transaction.atomic
def message_deliver(
    *,
    mailbox: Mailbox,
    blob: Blob,
    parsed: ParsedMessage,
    source_tag: str,
    label_roles: tuple[str, ...] = (Label.Role.INBOX,),
    user_labels: tuple[str, ...] = (),
    is_read: bool = False,
    is_starred: bool = False,
    receipt: InboundReceipt | None = None,
    received_at: datetime | None = None,
) -> Delivered:
    """Put one parsed message into ``mailbox``: thread, rows, labels, summary, event, live update.

    ``label_roles`` name system labels, ``user_labels`` user labels by name (created if new).
    Idempotent: delivering the same blob to the same mailbox again changes nothing.
    """
    existing = Message.objects.filter(mailbox=mailbox, blob=blob).first()
    if existing is not None:
        return Delivered(existing, created=False)
    copy = Copy(blob, parsed, source_tag, label_roles, user_labels, is_read, is_starred, receipt, received_at)
    mailbox_deliveries_lock(mailbox_ids=[mailbox.id], exclusive=False)
    context = MailboxContext.load(mailbox)
    try:
        # One savepoint around thread placement and insert: if a concurrent delivery of the same
        # blob wins the unique constraint, no empty thread is left behind.
        with transaction.atomic():
            message, correspondence = _message_place_and_insert(context, copy)
    except IntegrityError:
        return Delivered(Message.objects.get(mailbox=mailbox, blob=blob), created=False)
    deferred = DeferredRows()
    _message_complete(context, copy, message, correspondence, deferred)
    deferred.flush()
    return Delivered(message, created=True)


def message_deliver_new(*, context: MailboxContext, copy: Copy, deferred: DeferredRows) -> Message:
    """Deliver a copy the caller knows is not in the mailbox yet, inside the caller's transaction,
    without savepoints; bodies and events wait in ``deferred`` for the caller's ``flush()``. The
    caller holds the mailbox's delivery lock exclusively (``mailbox_deliveries_lock``).

    For batches: a concurrent delivery of the same blob raises ``IntegrityError``, and the caller
    rolls its whole transaction back and delivers the batch's messages one by one instead.
    """
    message, correspondence = _message_place_and_insert(context, copy)
    _message_complete(context, copy, message, correspondence, deferred)
    return message


def _message_place_and_insert(context: MailboxContext, copy: Copy) -> tuple[Message, Correspondence]:
    parsed = copy.parsed
    message_id = context.own_message_id(copy)
    if message_id != parsed.message_id:
        logger.info("inbound.message_id_reused", message_id=parsed.message_id, given=message_id)
        parsed = dataclasses.replace(parsed, message_id=message_id, message_id_synthesised=True)
    correspondence = correspondence_of(
        sender=parsed.sender.address,
        addresses={role: [a.address for a in found] for role, found in parsed.addresses.items()},
        list_id=parsed.list_id,
        source_tag=copy.source_tag,
        own=context.own,
    )
    placement = message_thread_resolve(mailbox=context.mailbox, parsed=parsed, correspondence=correspondence)
    sender = parsed.sender
    message = Message(
        mailbox=context.mailbox,
        thread=placement.thread,
        thread_reason=placement.reason,
        blob=copy.blob,
        receipt=copy.receipt,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        subject=parsed.subject,
        normalized_subject=placement.normalized_subject,
        from_address=sender.address,
        from_name=sender.name,
        list_id=parsed.list_id,
        list_unsubscribe=parsed.list_unsubscribe,
        authentication_results=parsed.authentication,
        date=parsed.date,
        snippet=parsed.snippet,
        size=parsed.size,
        has_attachments=any(not a.is_inline for a in parsed.attachments),
        is_read=copy.is_read,
        is_starred=copy.is_starred,
        received_at=copy.received_at or timezone.now(),
        source_tag=copy.source_tag,
    )
    message.search_document, message.address_document = search_documents(parsed=parsed)
    message.save(force_insert=True)
    context.taken.add(message_id)
    context.looked_up.add(message_id)
    return message, correspondence


def _message_complete(
    context: MailboxContext, copy: Copy, message: Message, correspondence: Correspondence, deferred: DeferredRows
) -> None:
    """Everything after the row: participants, attachments, body, labels, summary, event, live update."""
    _message_children_create(message, copy.parsed, deferred)
    labels = context.labels_for(roles=copy.label_roles, names=copy.user_labels)
    MessageLabel.objects.bulk_create(MessageLabel(mailbox=context.mailbox, message=message, label=lb) for lb in labels)
    thread = thread_add_message_summary(thread_id=message.thread_id, delta=_summary_delta(message, correspondence))
    _thread_labels_add(thread=thread, labels=labels, message=message)
    _message_received_notify(message, deferred)


def _message_children_create(message: Message, parsed: ParsedMessage, deferred: DeferredRows) -> None:
    Participant.objects.bulk_create(
        Participant(
            mailbox_id=message.mailbox_id,
            message=message,
            role=role,
            address=address.address,
            display_name=address.name,
            position=position,
        )
        for role, addresses in parsed.addresses.items()
        for position, address in enumerate(addresses)
    )
    deferred.bodies.append(
        MessageBody(message=message, mailbox_id=message.mailbox_id, text=parsed.text, html=parsed.html)
    )
    if not parsed.attachments:
        return
    Attachment.objects.bulk_create(
        Attachment(
            mailbox_id=message.mailbox_id,
            message=message,
            blob=blob_store(data=part.data),
            filename=part.filename,
            content_type=part.content_type,
            size=len(part.data),
            content_id=part.content_id,
            is_inline=part.is_inline,
            position=position,
        )
        for position, part in enumerate(parsed.attachments)
    )


def _summary_delta(message: Message, correspondence: Correspondence) -> SummaryDelta:
    return SummaryDelta(
        date=message.date,
        is_read=message.is_read,
        is_starred=message.is_starred,
        has_attachments=message.has_attachments,
        snippet=message.snippet,
        sender_name=message.from_name,
        sender_address=message.from_address,
        correspondents=correspondence.summary_addresses,
    )


def _thread_labels_add(*, thread: Thread, labels: list[Label], message: Message) -> None:
    """Count the message in each label's thread index. The caller holds the thread's row lock.

    Every label lists a conversation at its latest message, whichever label that message has,
    so the date shown and the sort order agree (a reply you send moves the thread up the Inbox).
    """
    unread = 0 if message.is_read else 1
    # A new thread has no label rows yet: nothing to read or re-date.
    existing: set[int] = set()
    if thread.message_count > 1:
        existing = set(ThreadLabel.objects.filter(thread=thread).values_list("label_id", flat=True))
        counted = [label.id for label in labels if label.id in existing]
        # One statement: count the message in its labels' rows, re-date every row of the thread.
        ThreadLabel.objects.filter(thread=thread).update(
            message_count=F("message_count") + Case(When(label_id__in=counted, then=1), default=0),
            unread_count=F("unread_count") + Case(When(label_id__in=counted, then=unread), default=0),
            last_message_at=thread.last_message_at,
        )
    ThreadLabel.objects.bulk_create(
        ThreadLabel(
            mailbox_id=thread.mailbox_id,
            label=label,
            thread=thread,
            message_count=1,
            unread_count=unread,
            last_message_at=thread.last_message_at,
        )
        for label in labels
        if label.id not in existing
    )


def _message_received_notify(message: Message, deferred: DeferredRows) -> None:
    event = DomainEvent(
        event_type=DomainEvent.Type.MESSAGE_RECEIVED,
        subject_type="message",
        subject_id=message.id,
        mailbox_id=message.mailbox_id,
        source_tag=message.source_tag,
        payload={"thread_id": message.thread_id, "message_id": message.message_id},
        occurred_at=message.received_at,
    )
    deferred.events.append(event)
    deferred.published.append(event)


def message_import_raw(
    *,
    mailbox: Mailbox,
    raw: bytes,
    source_tag: str,
    label_roles: tuple[str, ...] = (Label.Role.INBOX,),
    is_read: bool = False,
) -> Delivered:
    """Store ``raw`` content-addressed, parse it and deliver it into ``mailbox``."""
    received_at = timezone.now()
    blob = blob_store(data=raw)
    parsed = parse_message(raw, received_at=received_at, authserv_ids=settings.MAILSITE_AUTHSERV_IDS)
    return message_deliver(
        mailbox=mailbox,
        blob=blob,
        parsed=parsed,
        source_tag=source_tag,
        label_roles=label_roles,
        is_read=is_read,
        received_at=received_at,
    )
