"""Writes that put messages into mailboxes."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from delivery.models import Blob, InboundReceipt
from delivery.services import blob_store
from mailbox.models import (
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
from mailbox.services.conversations import message_correspondence, message_thread_resolve
from mailbox.services.labels import label_get_or_create
from mailsite.events import domain_event_record
from mailsite.models import DomainEvent
from mailsite.realtime import mailbox_publish_on_commit
from threads.models import Thread
from threads.services import SummaryDelta, thread_add_message_summary


@dataclass(frozen=True)
class Delivered:
    message: Message
    created: bool


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
    try:
        # One savepoint around thread placement and insert: if a concurrent delivery of the same
        # blob wins the unique constraint, no empty thread is left behind.
        with transaction.atomic():
            message = _message_insert(mailbox, blob, parsed, source_tag, is_read)
            message.receipt = receipt
            message.received_at = received_at or timezone.now()
            message.is_starred = is_starred
            message.search_document, message.address_document = search_documents(parsed=parsed)
            message.save()
    except IntegrityError:
        return Delivered(Message.objects.get(mailbox=mailbox, blob=blob), created=False)
    _message_children_create(message, parsed)
    labels = list(Label.objects.filter(mailbox=mailbox, role__in=label_roles))
    labels += [label_get_or_create(mailbox=mailbox, name=name) for name in user_labels]
    labels = list({label.id: label for label in labels}.values())
    MessageLabel.objects.bulk_create(MessageLabel(mailbox=mailbox, message=message, label=lb) for lb in labels)
    thread = thread_add_message_summary(thread_id=message.thread_id, delta=_summary_delta(message, parsed))
    _thread_labels_add(thread=thread, labels=labels, message=message)
    _message_received_notify(message)
    return Delivered(message, created=True)


def _message_insert(mailbox: Mailbox, blob: Blob, parsed: ParsedMessage, source_tag: str, is_read: bool) -> Message:
    """Place the message in its thread and build its row (saved by the caller)."""
    correspondence = message_correspondence(mailbox=mailbox, parsed=parsed, source_tag=source_tag)
    placement = message_thread_resolve(mailbox=mailbox, parsed=parsed, correspondence=correspondence)
    sender = parsed.sender
    return Message(
        mailbox=mailbox,
        thread=placement.thread,
        thread_reason=placement.reason,
        blob=blob,
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
        is_read=is_read,
        source_tag=source_tag,
    )


def _message_children_create(message: Message, parsed: ParsedMessage) -> None:
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
    MessageBody.objects.create(message=message, mailbox_id=message.mailbox_id, text=parsed.text, html=parsed.html)
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


def _summary_delta(message: Message, parsed: ParsedMessage) -> SummaryDelta:
    return SummaryDelta(
        date=message.date,
        is_read=message.is_read,
        is_starred=message.is_starred,
        has_attachments=message.has_attachments,
        snippet=message.snippet,
        sender_name=message.from_name,
        sender_address=message.from_address,
        correspondents=message_correspondence(
            mailbox=message.mailbox, parsed=parsed, source_tag=message.source_tag
        ).summary_addresses,
    )


def _thread_labels_add(*, thread: Thread, labels: list[Label], message: Message) -> None:
    """Count the message in each label's thread index. The caller holds the thread's row lock.

    Every label lists a conversation at its latest message, whichever label that message has,
    so the date shown and the sort order agree (a reply you send moves the thread up the Inbox).
    """
    existing = {row.label_id: row for row in ThreadLabel.objects.filter(thread=thread, label__in=labels)}
    for label in labels:
        row = existing.get(label.id) or ThreadLabel(mailbox_id=thread.mailbox_id, label=label, thread=thread)
        row.message_count += 1
        row.unread_count += 0 if message.is_read else 1
        row.last_message_at = thread.last_message_at
        row.save()
    ThreadLabel.objects.filter(thread=thread).exclude(last_message_at=thread.last_message_at).update(
        last_message_at=thread.last_message_at
    )


def _message_received_notify(message: Message) -> None:
    recorded = domain_event_record(
        event_type=DomainEvent.Type.MESSAGE_RECEIVED,
        subject_type="message",
        subject_id=message.id,
        mailbox_id=message.mailbox_id,
        source_tag=message.source_tag,
        payload={"thread_id": message.thread_id, "message_id": message.message_id},
        occurred_at=message.received_at,
    )
    mailbox_publish_on_commit(
        mailbox_id=message.mailbox_id,
        event={"type": "thread.updated", "thread_id": message.thread_id, "event_id": recorded.id},
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
    parsed = parse_message(raw, received_at=received_at)
    return message_deliver(
        mailbox=mailbox,
        blob=blob,
        parsed=parsed,
        source_tag=source_tag,
        label_roles=label_roles,
        is_read=is_read,
        received_at=received_at,
    )
