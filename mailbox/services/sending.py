"""Sending mail: check → build the MIME → store it → the sender's Sent copy → one outbound
delivery per recipient, all in one transaction; the send itself runs later in ``delivery``.

Local recipients (mailboxes on our domains) get their copy through the inbound ingest path when
their delivery is released, so undo send holds for them too.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from email.headerregistry import Address
from email.policy import compat32
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.html import escape, linebreaks

from delivery.models import Blob, OutboundDelivery, Suppression
from delivery.outbound import (
    DeliveryRequest,
    outbound_cancel,
    outbound_deliveries_create,
    outbound_send_queue_on_commit,
)
from delivery.selectors import RecipientTimeline, blob_read, outbound_scheduled_message_ids
from delivery.selectors import delivery_timeline_for_message as delivery_timeline
from delivery.services import blob_store
from mailbox.models import Alias, Label, Mailbox, Message
from mailbox.parsing import parse_message
from mailbox.selectors import mailboxes_for_addresses
from mailbox.services.delivering import message_deliver
from mailsite.events import domain_event_record
from mailsite.models import DomainEvent

SOURCE_TAG = "sent"
MAX_RECIPIENTS = 100


class SendRefused(Exception):
    """The message cannot be sent as given; ``str(error)`` is the message to show the user."""


class OutgoingAttachment(NamedTuple):
    filename: str
    content_type: str
    blob_sha256: str  # bytes already stored with delivery.services.blob_store


@dataclass(frozen=True)
class OutgoingMail:
    from_address: str
    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    html: str | None = None
    # (filename, content type, sha256 of bytes already stored with delivery.services.blob_store)
    attachments: list[OutgoingAttachment | tuple[str, str, str]] = field(default_factory=list)
    in_reply_to_message_id: int | None = None  # our Message row being replied to
    forward_of_message_id: int | None = None  # our Message row being forwarded
    forward_as_attachment: bool = True


@transaction.atomic
def message_send(*, mailbox: Mailbox, mail: OutgoingMail, send_at: datetime | None = None) -> Message:
    """Send ``mail`` from ``mailbox`` now (after the undo delay) or at ``send_at``.

    Raises ``SendRefused`` with a message for the user when the From address is not the
    mailbox's, a recipient is invalid or suppressed, or the mailbox's rate limit is reached.
    Returns the sender's copy, filed under Sent in the conversation it belongs to.
    """
    Mailbox.objects.select_for_update().filter(pk=mailbox.pk).first()  # one send at a time per mailbox
    recipients = _recipients_check(mail)
    _sender_check(mailbox, mail.from_address)
    _rate_limit_check(mailbox, len(recipients))
    local_addresses = _local_recipients(recipients)
    now = timezone.now()
    if send_at is not None and send_at <= now:
        send_at = None  # a time already past is "now"
    replied = _message_for(mailbox, mail.in_reply_to_message_id)
    forwarded = _message_for(mailbox, mail.forward_of_message_id)
    email = _email_build(mailbox, mail, replied or forwarded, forwarded, now)
    # Ends with a line break, as SMTP transmits it: the recipient stores the very bytes we stored.
    raw = email.message().as_bytes(linesep="\r\n").rstrip(b"\r\n") + b"\r\n"
    sent_copy = _sent_copy_deliver(mailbox, raw, mail.bcc, now)
    message_id = sent_copy.message_id
    send_after = send_at or now + timedelta(seconds=settings.MAILSITE_UNDO_SEND_SECONDS)
    deliveries = outbound_deliveries_create(
        mailbox_id=mailbox.id,
        message_id=sent_copy.id,
        rfc_message_id=message_id,
        blob_id=blob_store(data=raw).id,
        envelope_domain=mail.from_address.rpartition("@")[2].lower(),
        from_address=mail.from_address.lower(),
        recipients=[DeliveryRequest(r, r in local_addresses) for r in recipients],
        source_tag=SOURCE_TAG,
        send_after=send_after,
        scheduled=send_at is not None,
    )
    _message_sent_notify(sent_copy, deliveries, send_at)
    if send_at is None:
        outbound_send_queue_on_commit(
            delivery_ids=[d.id for d in deliveries], countdown=(send_after - timezone.now()).total_seconds()
        )
    return sent_copy


def message_send_cancel(*, mailbox: Mailbox, message_id: int) -> int:
    """Undo a send within its delay, or cancel a scheduled one: the deliveries not yet claimed are
    cancelled (the Sent copy stays, as a record). Returns how many; 0 means it already left."""
    if not Message.objects.filter(mailbox=mailbox, pk=message_id).exists():
        raise SendRefused("No such message.")
    return outbound_cancel(mailbox_id=mailbox.id, message_id=message_id)


# --- Checks ----------------------------------------------------------------------------------


def _recipients_check(mail: OutgoingMail) -> list[str]:
    """Every recipient's address once, lowercase (entries may be ``Name <address>``); invalid or
    suppressed ones refused by name."""
    entries = [*mail.to, *mail.cc, *mail.bcc]
    recipients = list(dict.fromkeys(_bare_address(entry) for entry in entries if entry.strip()))
    if not recipients:
        raise SendRefused("Add at least one recipient.")
    if len(recipients) > MAX_RECIPIENTS:
        raise SendRefused(f"A message can go to at most {MAX_RECIPIENTS} recipients.")
    invalid = [a for a in recipients if not _is_valid_address(a)]
    if invalid:
        raise SendRefused(f"Not a valid address: {', '.join(invalid)}.")
    suppressed = sorted(Suppression.objects.filter(address__in=recipients).values_list("address", flat=True))
    if suppressed:
        raise SendRefused(
            f"Mail to {', '.join(suppressed)} is suppressed (an earlier hard bounce or complaint); "
            "remove the address or ask an administrator to lift the suppression."
        )
    return recipients


def _bare_address(entry: str) -> str:
    """``Name <a@b>`` → ``a@b``; anything without angle brackets is taken as the address itself."""
    entry = entry.strip()
    return (parseaddr(entry)[1] if "<" in entry else entry).strip().lower()


def _is_valid_address(address: str) -> bool:
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


def _sender_check(mailbox: Mailbox, from_address: str) -> None:
    address = from_address.strip().lower()
    owned = address == mailbox.address or Alias.objects.filter(mailbox=mailbox, address=address).exists()
    if not owned:
        raise SendRefused(f"You can only send from your own addresses, not from {from_address}.")


def _rate_limit_check(mailbox: Mailbox, count: int) -> None:
    now = timezone.now()
    recent = OutboundDelivery.objects.filter(mailbox_id=mailbox.id)
    limits = (
        (timedelta(minutes=1), settings.MAILSITE_SEND_LIMIT_PER_MINUTE, "minute"),
        (timedelta(days=1), settings.MAILSITE_SEND_LIMIT_PER_DAY, "day"),
    )
    for window, limit, name in limits:
        used = recent.filter(created_at__gte=now - window).count()
        if used + count > limit:
            raise SendRefused(
                f"Sending limit reached: at most {limit} recipients per {name} "
                f"({used} used). Try again later, or contact an administrator."
            )


def _local_recipients(recipients: list[str]) -> set[str]:
    """The recipients that are mailboxes (or aliases) of ours; an unknown user on one of our
    domains is refused now rather than bounced later."""
    mailboxes, unknown = mailboxes_for_addresses(addresses=recipients)
    if unknown:
        raise SendRefused(f"No mailbox here for {', '.join(unknown)}.")
    if not mailboxes:
        return set()
    local = {m.address for m in mailboxes}
    local |= set(Alias.objects.filter(address__in=recipients).values_list("address", flat=True))
    return local & set(recipients)


def _message_for(mailbox: Mailbox, message_id: int | None) -> Message | None:
    if message_id is None:
        return None
    message = Message.objects.filter(mailbox=mailbox, pk=message_id).select_related("blob").first()
    if message is None:
        raise SendRefused("The message you are replying to or forwarding no longer exists.")
    return message


# --- Building --------------------------------------------------------------------------------


def _email_build(
    mailbox: Mailbox, mail: OutgoingMail, parent: Message | None, forwarded: Message | None, now: datetime
) -> EmailMultiAlternatives:
    domain = mail.from_address.rpartition("@")[2].lower()
    text, html = mail.text, mail.html
    if forwarded is not None and not mail.forward_as_attachment:
        text, html = _inline_forward(forwarded, text), None if html is None else html + _inline_forward_html(forwarded)
    email = EmailMultiAlternatives(
        subject=mail.subject,
        body=text,
        from_email=formataddr((mailbox.display_name, mail.from_address.strip())),
        to=mail.to,
        cc=mail.cc,
        headers={"Message-ID": make_msgid(domain=domain), "Date": format_datetime(now), **_thread_headers(parent)},
    )
    if html is not None:
        email.attach_alternative(html, "text/html")
    for filename, content_type, sha256 in mail.attachments:
        blob = Blob.objects.filter(sha256=sha256).first()
        if blob is None:
            raise SendRefused(f"The attachment {filename} is no longer available; attach it again.")
        email.attach(filename, blob_read(blob=blob), content_type)
    if forwarded is not None and mail.forward_as_attachment:
        original = message_from_bytes(blob_read(blob=forwarded.blob), policy=compat32)
        email.attach(f"{forwarded.subject or 'message'}.eml"[:200], original, "message/rfc822")
    return email


def _thread_headers(parent: Message | None) -> dict[str, str]:
    if parent is None:
        return {}
    references = [*parent.references, parent.message_id]
    return {"In-Reply-To": f"<{parent.message_id}>", "References": " ".join(f"<{r}>" for r in references if r)}


def _inline_forward(original: Message, text: str) -> str:
    body = getattr(original, "body", None)
    header = (
        "---------- Forwarded message ----------\n"
        f"From: {formataddr((original.from_name, original.from_address))}\n"
        f"Date: {format_datetime(original.date)}\n"
        f"Subject: {original.subject}\n\n"
    )
    return f"{text}\n\n{header}{body.text if body else ''}"


def _inline_forward_html(original: Message) -> str:
    return "<br><br>" + linebreaks(escape(_inline_forward(original, "").strip()))


# --- The sender's copy -----------------------------------------------------------------------


def _sent_copy_deliver(mailbox: Mailbox, raw: bytes, bcc: list[str], now: datetime) -> Message:
    """File the message under Sent through the same delivery path inbound mail takes. The copy
    keeps the Bcc line (the recipients' copies never carry it), so its bytes are its own."""
    copy_raw = raw if not bcc else _with_bcc(raw, bcc)
    parsed = parse_message(copy_raw, received_at=now)
    delivered = message_deliver(
        mailbox=mailbox,
        blob=blob_store(data=copy_raw),
        parsed=parsed,
        source_tag=SOURCE_TAG,
        label_roles=(Label.Role.SENT,),
        is_read=True,
        received_at=now,
    )
    return delivered.message


def _with_bcc(raw: bytes, bcc: list[str]) -> bytes:
    header = "Bcc: " + ", ".join(str(Address(addr_spec=a.strip())) for a in bcc) + "\r\n"
    return header.encode() + raw


def _message_sent_notify(message: Message, deliveries: list[OutboundDelivery], send_at: datetime | None) -> None:
    domain_event_record(
        event_type=DomainEvent.Type.MESSAGE_SENT,
        subject_type="message",
        subject_id=message.id,
        mailbox_id=message.mailbox_id,
        source_tag=SOURCE_TAG,
        payload={
            "thread_id": message.thread_id,
            "message_id": message.message_id,
            "recipients": len(deliveries),
            "send_at": send_at.isoformat() if send_at else None,
        },
    )


# --- Reads for the Sent and Scheduled views (scoped to the mailbox) ---------------------------


def messages_scheduled(*, mailbox: Mailbox) -> QuerySet[Message]:
    """The Scheduled view: the mailbox's messages waiting for their send-later time, soonest
    first, each annotated with ``send_after``."""
    waiting = OutboundDelivery.objects.filter(
        mailbox_id=mailbox.id, message_id=OuterRef("pk"), status=OutboundDelivery.Status.SCHEDULED
    )
    return (
        Message.objects.filter(mailbox=mailbox, pk__in=outbound_scheduled_message_ids(mailbox=mailbox))
        .annotate(send_after=Subquery(waiting.order_by("send_after").values("send_after")[:1]))
        .order_by("send_after", "id")
    )


def delivery_timeline_for_message(*, mailbox: Mailbox, message_id: int) -> list[RecipientTimeline]:
    """Per recipient of a message the mailbox sent: queued → sent → delivered / bounced, with the
    server's response and, on failure, ``failure_text`` ("Not delivered to X: reason")."""
    return delivery_timeline(mailbox=mailbox, message_id=message_id)
