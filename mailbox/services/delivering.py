"""Writes that put messages into mailboxes."""

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from delivery.models import Blob, InboundReceipt
from delivery.services import blob_store, blobs_store
from mailbox.models import (
    Alias,
    Attachment,
    Label,
    Mailbox,
    Message,
    MessageBody,
    MessageLabel,
)
from mailbox.parsing import ParsedMessage, parse_message
from mailbox.rendering.height import body_lines_estimate
from mailbox.search.indexing import DocumentTexts, search_document_texts, search_documents, search_documents_computed
from mailbox.services.contacts import Correspondent, contacts_record, correspondents_of
from mailbox.services.conversations import Correspondence, correspondence_of, message_thread_resolve
from mailbox.services.labels import label_get_or_create
from mailsite.models import DomainEvent
from mailsite.realtime import mailbox_publish_many_on_commit
from mailsite.rows import rows_insert
from threads.services import (
    SummaryDelta,
    batch_current,
    placements_prepare,
    thread_add_message_summary,
    thread_batch,
)

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
    """Rows nothing reads before the deliveries commit, inserted together by ``flush``: the messages
    of a batch, their participants, attachments, bodies and labels, the label index's increments,
    and the domain events (published to the mailboxes' open tabs once committed)."""

    messages: list[Message] = field(default_factory=list)  # not inserted yet
    documents: list[DocumentTexts] = field(default_factory=list)  # each message's search texts
    participants: list[tuple[Message, str, str, str, int]] = field(default_factory=list)  # (message, role, …)
    attachments: list[tuple[Message, int, Any]] = field(default_factory=list)  # (message, position, part)
    labels: list[MessageLabel] = field(default_factory=list)
    bodies: list[MessageBody] = field(default_factory=list)
    # (mailbox id, thread id) → label id → [messages, unread] to add; every thread here is re-dated.
    thread_labels: dict[tuple[int, int], dict[int, list[int]]] = field(default_factory=dict)
    received: list[Message] = field(default_factory=list)  # each gets a message.received event
    events: list[DomainEvent] = field(default_factory=list)
    contacts: list[Correspondent] = field(default_factory=list)  # one upsert per batch

    def flush(self) -> None:
        batch = batch_current()
        if batch is not None:
            batch.flush_threads()  # thread rows first: messages point at them
        # One short statement (bulk_create would send a VALUES row of ~30 placeholders per message).
        rows_insert(objs=self.messages, computed=search_documents_computed(texts=self.documents))
        _participants_create(self.participants)
        _attachments_create(self.attachments)
        rows_insert(objs=self.labels)
        rows_insert(objs=self.bodies)
        _thread_labels_add(self.thread_labels)
        contacts_record(correspondents=self.contacts)
        received = [_received_event(message) for message in self.received]
        rows_insert(objs=[*self.events, *received])
        mailbox_publish_many_on_commit(
            events=[
                (e.mailbox_id, {"type": "thread.updated", "thread_id": e.payload["thread_id"], "event_id": e.id})
                for e in received
            ]
        )
        for rows in (
            self.messages,
            self.documents,
            self.participants,
            self.attachments,
            self.labels,
            self.bodies,
            self.received,
            self.contacts,
        ):
            rows.clear()
        self.thread_labels.clear()
        self.events.clear()


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
            message, correspondence, texts = _message_place(context, copy)
            message.search_document, message.address_document = search_documents(texts=texts)
            message.save(force_insert=True)
    except IntegrityError:
        return Delivered(Message.objects.get(mailbox=mailbox, blob=blob), created=False)
    deferred = DeferredRows()
    _message_complete(context, copy, message, correspondence, deferred)
    deferred.flush()
    return Delivered(message, created=True)


def message_deliver_new(*, context: MailboxContext, copy: Copy, deferred: DeferredRows) -> Message:
    """Deliver a copy the caller knows is not in the mailbox yet, inside the caller's transaction,
    without savepoints; every row waits in ``deferred`` for the caller's ``flush()``, which inserts
    the batch's messages in the order they were placed. The caller holds the mailbox's delivery
    lock exclusively (``mailbox_deliveries_lock``); ``copies_deliver`` is the way to call it.

    For batches: a concurrent delivery of the same blob raises ``IntegrityError``, and the caller
    rolls its whole transaction back and delivers the batch's messages one by one instead.
    """
    message, correspondence, texts = _message_place(context, copy)
    deferred.messages.append(message)
    deferred.documents.append(texts)
    _message_complete(context, copy, message, correspondence, deferred)
    return message


def copies_deliver(*, copies: list[tuple[Mailbox, Copy]], deferred: DeferredRows) -> list[Message]:
    """Deliver copies known not to be in their mailboxes yet, in order, as one batch in the caller's
    transaction: a few statements for the batch, whatever its size (``thread_batch``), each copy placed
    as if the earlier ones were delivered one by one. Flushes ``deferred`` (which may already hold
    the caller's rows). The caller holds the mailboxes' delivery locks exclusively
    (``mailbox_deliveries_lock``); a concurrent delivery of the same blob raises ``IntegrityError``.
    """
    by_mailbox: dict[int, list[Copy]] = {}
    contexts: dict[int, MailboxContext] = {}
    for mailbox, copy in copies:
        by_mailbox.setdefault(mailbox.id, []).append(copy)
        if mailbox.id not in contexts:
            contexts[mailbox.id] = MailboxContext.load(mailbox)
    delivered = []
    with thread_batch(flush_hook=deferred.flush):
        for mailbox_id in sorted(by_mailbox):
            batch = by_mailbox[mailbox_id]
            contexts[mailbox_id].message_ids_look_up({copy.parsed.message_id for copy in batch})
            headers = [
                (c.parsed.message_id, c.parsed.in_reply_to, c.parsed.references, c.parsed.subject, c.parsed.list_id)
                for c in batch
            ]
            placements_prepare(mailbox_id=mailbox_id, messages=headers)
        for mailbox, copy in copies:
            delivered.append(message_deliver_new(context=contexts[mailbox.id], copy=copy, deferred=deferred))
        deferred.flush()
    return delivered


def _message_place(context: MailboxContext, copy: Copy) -> tuple[Message, Correspondence, DocumentTexts]:
    """The message's row, placed in its thread, not saved; and the texts of its search documents."""
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
        thread_id=placement.thread.pk,
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
        body_lines=body_lines_estimate(text=parsed.text, html=parsed.html),
        size=parsed.size,
        has_attachments=any(not a.is_inline for a in parsed.attachments),
        is_read=copy.is_read,
        is_starred=copy.is_starred,
        received_at=copy.received_at or timezone.now(),
        source_tag=copy.source_tag,
    )
    context.taken.add(message_id)
    context.looked_up.add(message_id)
    return message, correspondence, search_document_texts(parsed=parsed)


def _message_complete(
    context: MailboxContext, copy: Copy, message: Message, correspondence: Correspondence, deferred: DeferredRows
) -> None:
    """Everything after the row: participants, attachments, body, labels, summary, event, live update.
    The summary is folded now (in a batch, in memory); the other rows wait in ``deferred``."""
    parsed = copy.parsed
    deferred.participants += [
        (message, role, address.address, address.name, position)
        for role, addresses in parsed.addresses.items()
        for position, address in enumerate(addresses)
    ]
    deferred.bodies.append(
        MessageBody(message=message, mailbox_id=message.mailbox_id, text=parsed.text, html=parsed.html)
    )
    deferred.attachments += [(message, position, part) for position, part in enumerate(parsed.attachments)]
    deferred.contacts += correspondents_of(
        mailbox_id=message.mailbox_id, parsed=parsed, own=context.own, label_roles=copy.label_roles, at=message.date
    )
    labels = context.labels_for(roles=copy.label_roles, names=copy.user_labels)
    deferred.labels += [MessageLabel(mailbox=context.mailbox, message=message, label=label) for label in labels]
    thread_add_message_summary(thread_id=message.thread_id, delta=_summary_delta(message, correspondence))
    counts = deferred.thread_labels.setdefault((message.mailbox_id, message.thread_id), {})
    for label in labels:
        entry = counts.setdefault(label.id, [0, 0])
        entry[0] += 1
        entry[1] += 0 if message.is_read else 1
    deferred.received.append(message)


# Raw on purpose: a batch has several participants per message, and building a model instance for
# each costs more than the insert.
_PARTICIPANTS_SQL = (
    "INSERT INTO mailbox_participant (mailbox_id, message_id, role, address, display_name, position) "
    "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::int[])"
)


def _participants_create(pending: list[tuple[Message, str, str, str, int]]) -> None:
    if not pending:
        return
    columns = [[m.mailbox_id for m, *_ in pending], [m.pk for m, *_ in pending]]
    columns += [list(column) for column in zip(*(row[1:] for row in pending), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_PARTICIPANTS_SQL, columns)


def _attachments_create(pending: list[tuple[Message, int, Any]]) -> None:
    if not pending:
        return
    blobs = blobs_store(datas=[part.data for _, _, part in pending])
    rows_insert(
        objs=[
            Attachment(
                mailbox_id=message.mailbox_id,
                message=message,
                blob=blobs[hashlib.sha256(part.data).hexdigest()],
                filename=part.filename,
                content_type=part.content_type,
                size=len(part.data),
                content_id=part.content_id,
                is_inline=part.is_inline,
                position=position,
            )
            for message, position, part in pending
        ]
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


# Count the messages in their labels' rows (created when new) and re-date every row of the
# threads they joined: every label lists a conversation at its latest message, whichever label that
# message has, so the date shown and the sort order agree (a reply you send moves the thread up the
# Inbox). Two statements for any number of messages; the threads' summaries are written already.
_THREAD_LABELS_COUNT_SQL = """
INSERT INTO mailbox_threadlabel (mailbox_id, label_id, thread_id, message_count, unread_count, last_message_at)
SELECT v.mailbox_id, v.label_id, v.thread_id, v.messages, v.unread, t.last_message_at
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::int[], %s::int[])
    AS v(mailbox_id, label_id, thread_id, messages, unread)
JOIN threads_thread AS t ON t.id = v.thread_id
ON CONFLICT (label_id, thread_id) DO UPDATE SET
    message_count = mailbox_threadlabel.message_count + EXCLUDED.message_count,
    unread_count = mailbox_threadlabel.unread_count + EXCLUDED.unread_count
"""
_THREAD_LABELS_REDATE_SQL = """
UPDATE mailbox_threadlabel AS tl SET last_message_at = t.last_message_at
FROM threads_thread AS t
WHERE tl.thread_id = t.id AND tl.mailbox_id = ANY(%s) AND tl.thread_id = ANY(%s)
    AND tl.last_message_at IS DISTINCT FROM t.last_message_at
"""


def _thread_labels_add(counts: dict[tuple[int, int], dict[int, list[int]]]) -> None:
    """Apply the label index's increments. The caller holds the threads' row locks."""
    if not counts:
        return
    rows = [
        (mailbox_id, label_id, thread_id, n, unread)
        for (mailbox_id, thread_id), labels in counts.items()
        for label_id, (n, unread) in labels.items()
    ]
    with connection.cursor() as cursor:
        if rows:
            cursor.execute(_THREAD_LABELS_COUNT_SQL, [list(column) for column in zip(*rows, strict=True)])
        cursor.execute(
            _THREAD_LABELS_REDATE_SQL,
            [sorted({mailbox_id for mailbox_id, _ in counts}), sorted({thread_id for _, thread_id in counts})],
        )


def _received_event(message: Message) -> DomainEvent:
    return DomainEvent(
        event_type=DomainEvent.Type.MESSAGE_RECEIVED,
        subject_type="message",
        subject_id=message.id,
        mailbox_id=message.mailbox_id,
        source_tag=message.source_tag,
        payload={"thread_id": message.thread_id, "message_id": message.message_id},
        occurred_at=message.received_at,
    )


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
