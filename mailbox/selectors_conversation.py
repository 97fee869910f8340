"""Reads behind the conversation view, each scoped to the requesting user's mailbox.

The view's query count does not grow with the thread: messages, their participants and their
attachments are three queries whatever the length; bodies are read one at a time by the body
document, only when a message is opened.
"""

from dataclasses import dataclass, field

from delivery.selectors import blob_read
from mailbox.models import (
    Attachment,
    Mailbox,
    MergedThread,
    Message,
    MessageBody,
    Participant,
    RemoteImageSender,
    ThreadLabel,
)
from mailbox.parsing.calendar import CALENDAR_TYPES, MAX_CALENDAR_BYTES, CalendarEvent, calendar_events
from mailbox.parsing.smime import SMIME_TYPES, is_encrypted
from threads.models import Thread

# Content types a browser may show inline from our routes: raster images only (never SVG or HTML).
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass(frozen=True)
class Conversation:
    thread: Thread
    messages: list[Message]
    image_senders: frozenset[str]
    # Each message's To and Cc recipients as (role, display name, address), in header order.
    recipients: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)
    attachments: dict[int, list[Attachment]] = field(default_factory=dict)  # each message's, in order
    label_ids: frozenset[int] = frozenset()  # the labels on the thread (any of its messages), system ones too


# What the conversation page shows of a message (its card): loading no other column keeps a long
# thread's model instances cheap. Reading any other field of these messages costs a query each.
CARD_FIELDS = (
    "id",
    "mailbox_id",
    "thread_id",
    "thread_reason",
    "from_address",
    "from_name",
    "authentication_results",
    "date",
    "snippet",
    "has_attachments",
    "is_read",
    "remote_content",
    "body_lines",
)


def conversation_get(*, mailbox: Mailbox, thread_id: int) -> Conversation | None:
    """A thread of ``mailbox`` with its messages oldest first (``CARD_FIELDS`` loaded), their
    attachments and To/Cc recipients, its labels, and which of its senders' images are always shown;
    ``None`` if not the mailbox's. Six queries, whatever the thread's length."""
    thread = Thread.objects.filter(mailbox_id=mailbox.id, pk=thread_id).first()
    if thread is None:
        return None
    messages = list(
        Message.objects.filter(mailbox=mailbox, thread_id=thread.id).only(*CARD_FIELDS).order_by("date", "id")
    )
    senders = {m.from_address.lower() for m in messages if m.from_address}
    return Conversation(
        thread=thread,
        messages=messages,
        image_senders=image_senders_allowed(mailbox=mailbox, addresses=senders),
        recipients=_recipients(mailbox, thread.id),
        attachments=_attachments(mailbox, thread.id),
        label_ids=frozenset(
            ThreadLabel.objects.filter(mailbox=mailbox, thread_id=thread.id).values_list("label_id", flat=True)
        ),
    )


@dataclass(frozen=True)
class MessageNotices:
    """What a message's parts say that its body does not: an invitation's events, encryption."""

    events: list[CalendarEvent] = field(default_factory=list)
    encrypted: bool = False  # S/MIME enveloped-data: we hold no key to read it


def message_notices(*, mailbox: Mailbox, attachments: dict[int, list[Attachment]]) -> dict[int, MessageNotices]:
    """Notices for the messages whose ``attachments`` (``Conversation.attachments``) include a
    calendar or an S/MIME part, by message id. Reads only those parts' blobs (one query for their
    rows, then each blob): most conversations have none."""
    wanted = [
        part.id
        for parts in attachments.values()
        for part in parts
        if part.content_type in SMIME_TYPES or (part.content_type in CALENDAR_TYPES and part.size <= MAX_CALENDAR_BYTES)
    ]
    if not wanted:
        return {}
    events: dict[int, list[CalendarEvent]] = {}
    encrypted: set[int] = set()
    for part in Attachment.objects.filter(mailbox=mailbox, pk__in=wanted).select_related("blob").order_by("position"):
        data = blob_read(blob=part.blob)
        if part.content_type in SMIME_TYPES:
            if is_encrypted(data):
                encrypted.add(part.message_id)
        else:
            events.setdefault(part.message_id, []).extend(calendar_events(data))
    return {
        message_id: MessageNotices(events=events.get(message_id, []), encrypted=message_id in encrypted)
        for message_id in events.keys() | encrypted
    }


def thread_merged_into(*, mailbox: Mailbox, thread_id: int) -> int | None:
    """The mailbox's conversation that ``thread_id`` (no longer one) was merged into, if that one
    still exists; ``None`` for any other id, another mailbox's included."""
    merged_into = (
        MergedThread.objects.filter(mailbox_id=mailbox.id, thread_id=thread_id)
        .values_list("merged_into", flat=True)
        .first()
    )
    if merged_into is None or not Thread.objects.filter(mailbox_id=mailbox.id, pk=merged_into).exists():
        return None
    return merged_into


def _recipients(mailbox: Mailbox, thread_id: int) -> dict[int, list[tuple[str, str, str]]]:
    """To and Cc (the participants a card lists; the sender is on the message row) of the thread's
    messages, as tuples: a long thread has hundreds and model instances cost several times more."""
    rows = (
        Participant.objects.filter(
            mailbox=mailbox, message__thread_id=thread_id, role__in=[Participant.Role.TO, Participant.Role.CC]
        )
        .order_by("message_id", "role", "position")
        .values_list("message_id", "role", "display_name", "address")
    )
    recipients: dict[int, list[tuple[str, str, str]]] = {}
    for message_id, role, name, address in rows:
        recipients.setdefault(message_id, []).append((role, name, address))
    return recipients


def _attachments(mailbox: Mailbox, thread_id: int) -> dict[int, list[Attachment]]:
    """The attachments of the thread's messages by message id, in one query (grouped here: a
    prefetch built a related manager per message, most of them without attachments)."""
    parts: dict[int, list[Attachment]] = {}
    rows = Attachment.objects.filter(mailbox=mailbox, message__thread_id=thread_id).order_by("message_id", "position")
    for part in rows:
        parts.setdefault(part.message_id, []).append(part)
    return parts


def thread_message_ids(*, mailbox: Mailbox, thread_id: int, message_ids: list[int]) -> list[int] | None:
    """Those of ``message_ids`` in the mailbox's thread ``thread_id``; ``None`` if it has no such thread."""
    if not Thread.objects.filter(mailbox_id=mailbox.id, pk=thread_id).exists():
        return None
    rows = Message.objects.filter(mailbox=mailbox, thread_id=thread_id, pk__in=message_ids)
    return list(rows.values_list("id", flat=True))


def image_senders_allowed(*, mailbox: Mailbox, addresses: set[str]) -> frozenset[str]:
    """Those of ``addresses`` whose remote images the mailbox always shows."""
    if not addresses:
        return frozenset()
    rows = RemoteImageSender.objects.filter(mailbox=mailbox, address__in=addresses)
    return frozenset(rows.values_list("address", flat=True))


def message_get_for_mailbox(*, mailbox: Mailbox, message_id: int) -> Message | None:
    return Message.objects.filter(mailbox=mailbox, pk=message_id).first()


def message_body_get(*, mailbox: Mailbox, message: Message) -> MessageBody | None:
    return MessageBody.objects.filter(mailbox=mailbox, message=message).first()


def message_inline_parts(*, mailbox: Mailbox, message: Message) -> dict[str, Attachment]:
    """The message's parts with a Content-ID, by that id."""
    parts = Attachment.objects.filter(mailbox=mailbox, message=message).exclude(content_id="").order_by("position")
    by_id: dict[str, Attachment] = {}
    for part in parts:
        by_id.setdefault(part.content_id.strip("<> "), part)
    return by_id


def attachment_get_for_mailbox(*, mailbox_id: int, message_id: int, attachment_id: int) -> Attachment | None:
    return (
        Attachment.objects.filter(mailbox_id=mailbox_id, message_id=message_id, pk=attachment_id)
        .select_related("blob")
        .first()
    )


def inline_part_get(*, mailbox_id: int, message_id: int, content_id: str) -> Attachment | None:
    """The message's part with that Content-ID, if it is an image a browser may show inline."""
    wanted = {content_id, f"<{content_id}>"}
    return (
        Attachment.objects.filter(
            mailbox_id=mailbox_id, message_id=message_id, content_id__in=wanted, content_type__in=INLINE_IMAGE_TYPES
        )
        .select_related("blob")
        .order_by("position")
        .first()
    )


def message_mailbox_id(*, message_id: int) -> int | None:
    """The mailbox a message belongs to: only for checking a signature that names both."""
    return Message.objects.filter(pk=message_id).values_list("mailbox_id", flat=True).first()


def mailbox_get(*, mailbox_id: int) -> Mailbox | None:
    """A mailbox by id: only once a signature naming it has been checked."""
    return Mailbox.objects.filter(pk=mailbox_id).first()
