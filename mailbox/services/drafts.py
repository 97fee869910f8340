"""Writes for drafts: created from a mode (new, reply, reply all, forward), autosaved with an
optimistic version check, attachments added and removed, discarded; and the pure translation of
a draft into what the outbound send service takes.

Addresses are kept exactly as typed: checking them (``recipients_check``) reports problems but
never rewrites or drops what the user wrote.
"""

import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import nh3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from markdown_it import MarkdownIt

from delivery.services import blob_store_file
from mailbox.models import Attachment, Draft, DraftAttachment, Mailbox, Message, Participant
from mailbox.rendering.plaintext import html_to_text
from mailbox.selectors_drafts import own_addresses
from mailbox.services.sending import OutgoingMail, message_send, message_send_cancel

CONFLICT_MESSAGE = (
    "This draft was changed in another tab or window since you opened it. "
    "Your text here is kept: copy it, or save again to replace the other version."
)
# Reply and forward markers a subject may already carry, in the languages other clients write.
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw|rif|odp|vs)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*(fwd?|wg|tr|enc|rv|vb|pd|doorst)\s*:", re.IGNORECASE)
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
# Markdown subset for "simple formatting": CommonMark without raw HTML, then sanitised anyway.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")
_HTML_TAGS = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h1", "h2", "h3", "hr"}


class DraftConflict(Exception):
    """The draft was saved elsewhere (another tab) after the version this save started from."""

    def __init__(self, current_version: int) -> None:
        super().__init__(CONFLICT_MESSAGE)
        self.current_version = current_version


class AttachmentRejected(ValidationError):
    """An upload the draft cannot take (too large); the message says why."""


@dataclass(frozen=True)
class DraftFields:
    """What the compose form edits."""

    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    body_format: str = Draft.BodyFormat.PLAIN


# --- Addresses -------------------------------------------------------------------------------


def format_address(name: str, address: str) -> str:
    """``Name <address>``, quoting the name where it holds characters that separate addresses."""
    if not name or name.lower() == address.lower():
        return address
    if re.search(r'[,;<>@"()\[\]:\\]', name):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{address}>'
    return f"{name} <{address}>"


def split_addresses(text: str) -> list[str]:
    """The typed entries of an address field, as typed: commas and semicolons separate, except
    inside a quoted name or angle brackets."""
    entries, current, quoted, escaped, angle = [], [], False, False, False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch in "<>" and not quoted:
            angle = ch == "<"
        elif ch in ",;" and not (quoted or angle):
            entries.append("".join(current))
            current = []
            continue
        current.append(ch)
    entries.append("".join(current))
    return [entry.strip() for entry in entries if entry.strip()]


def _parse_entry(entry: str) -> tuple[str, str] | None:
    """(name, address) of one typed entry, or ``None`` when it is not an address: a bare
    address, or a name followed by ``<address>``."""
    name, address = parseaddr(entry)
    well_formed = entry.endswith(">") if "<" in entry else entry == address
    try:
        validate_email(address)
    except ValidationError:
        return None
    return (name.strip(), address) if well_formed else None


def parse_addresses(text: str) -> list[tuple[str, str]]:
    """The valid (name, address) pairs of a typed field; see ``recipients_check`` for the rest."""
    return [pair for pair in map(_parse_entry, split_addresses(text)) if pair is not None]


def recipients_check(*, to: str, cc: str, bcc: str, require_one: bool = True) -> dict[str, str]:
    """Problems with the typed recipients, by field name (empty when all is well). A draft being
    written may have none yet (``require_one=False``); a message being sent may not."""
    problems: dict[str, str] = {}
    total = 0
    for field, text in (("to", to), ("cc", cc), ("bcc", bcc)):
        entries = split_addresses(text)
        total += len(entries)
        bad = [entry for entry in entries if _parse_entry(entry) is None]
        if bad:
            problems[field] = "Not a valid address: " + ", ".join(bad)
    limit = settings.MAILSITE_COMPOSE_MAX_RECIPIENTS
    if total > limit:
        problems["to"] = f"Too many recipients: {total}; a message can go to at most {limit}."
    if total == 0 and require_one:
        problems.setdefault("to", "Add at least one recipient.")
    return problems


# --- Composing from a mode -------------------------------------------------------------------


def subject_reply(subject: str) -> str:
    """``Re: subject``, without stacking a second prefix on a subject that has one."""
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}".rstrip()


def subject_forward(subject: str) -> str:
    return subject if _FORWARD_PREFIX.match(subject) else f"Fwd: {subject}".rstrip()


def _sender(message: Message) -> str:
    return format_address(message.from_name, message.from_address) or "(unknown sender)"


def _date_line(message: Message) -> str:
    when = timezone.localtime(message.date)
    return f"{when:%a}, {when.day} {when:%b %Y} at {when:%H:%M}"


def original_text(message: Message) -> str:
    """The original's text body, or its HTML reduced to text when it has no text part."""
    body = getattr(message, "body", None)
    if body is None:
        return ""
    if body.text.strip():
        return body.text
    return html_to_text(body.html)


def quote_block(message: Message) -> str:
    """``On DATE, NAME wrote:`` and the original's text, each line quoted with ``> ``."""
    lines = original_text(message).replace("\r\n", "\n").rstrip("\n").split("\n")
    quoted = "\n".join(f"> {line}" if line else ">" for line in lines)
    return f"On {_date_line(message)}, {_sender(message)} wrote:\n{quoted}\n"


def forward_block(message: Message) -> str:
    """The forwarded original: its headers, then its text."""
    by_role = _participants_by_role(message)
    header_lines = [
        "---------- Forwarded message ----------",
        f"From: {_sender(message)}",
        f"Date: {_date_line(message)}",
        f"Subject: {message.subject}",
    ]
    for role, label in ((Participant.Role.TO, "To"), (Participant.Role.CC, "Cc")):
        if by_role.get(role):
            header_lines.append(f"{label}: " + ", ".join(format_address(n, a) for n, a in by_role[role]))
    return "\n".join(header_lines) + "\n\n" + original_text(message).rstrip("\n") + "\n"


def _participants_by_role(message: Message) -> dict[str, list[tuple[str, str]]]:
    by_role: dict[str, list[tuple[str, str]]] = {}
    for participant in message.participants.all():
        by_role.setdefault(participant.role, []).append((participant.display_name, participant.address))
    if not by_role.get(Participant.Role.FROM) and message.from_address:
        by_role[Participant.Role.FROM] = [(message.from_name, message.from_address)]
    return by_role


def reply_recipients(*, message: Message, own: set[str], reply_all: bool) -> tuple[list[str], list[str]]:
    """(to, cc) of a reply: the Reply-To or sender (the original's recipients when the user sent
    it); for reply all, also everyone else on To and Cc. Never the user's own addresses, never an
    address twice."""
    by_role = _participants_by_role(message)
    senders = by_role.get(Participant.Role.FROM, [])
    from_me = any(address.lower() in own for _, address in senders)
    replied_to = by_role.get(Participant.Role.REPLY_TO) or senders
    to = by_role.get(Participant.Role.TO, []) if from_me else replied_to
    cc: list[tuple[str, str]] = []
    if reply_all:
        to = to + ([] if from_me else by_role.get(Participant.Role.TO, []))
        cc = by_role.get(Participant.Role.CC, [])
    seen = set(own)
    return _unique(to, seen), _unique(cc, seen)


def _unique(pairs: list[tuple[str, str]], seen: set[str]) -> list[str]:
    """Formatted addresses not yet in ``seen`` (lowercase), adding them to it."""
    kept = []
    for name, address in pairs:
        key = address.lower()
        if key and key not in seen:
            seen.add(key)
            kept.append(format_address(name, address))
    return kept


def _signature_block(mailbox: Mailbox) -> str:
    signature = mailbox.signature.strip("\n")
    return f"\n\n-- \n{signature}" if signature.strip() else ""


def draft_initial_fields(*, mailbox: Mailbox, mode: str, source: Message | None) -> DraftFields:
    """What a new draft starts with: the signature, and for a reply or forward the recipients,
    subject and quoted or forwarded original. Reads only (the aliases, for reply all)."""
    signature = _signature_block(mailbox)
    if source is None or mode == Draft.Mode.NEW:
        return DraftFields(body=signature)
    if mode == Draft.Mode.FORWARD:
        return DraftFields(subject=subject_forward(source.subject), body=f"{signature}\n\n{forward_block(source)}")
    to, cc = reply_recipients(
        message=source, own=own_addresses(mailbox=mailbox), reply_all=mode == Draft.Mode.REPLY_ALL
    )
    return DraftFields(
        to=", ".join(to),
        cc=", ".join(cc),
        subject=subject_reply(source.subject),
        body=f"{signature}\n\n{quote_block(source)}",
    )


# --- Writes ----------------------------------------------------------------------------------


@transaction.atomic
def draft_create(
    *, mailbox: Mailbox, mode: str = Draft.Mode.NEW, source: Message | None = None, fields: DraftFields | None = None
) -> Draft:
    """A new draft. With ``source`` (a message of this mailbox, from ``source_message_get``) and a
    reply/forward mode, recipients, subject and body start from it (quote or forwarded block and
    the signature) and a forward carries the original's attachments over, sharing their blobs.
    ``fields`` replaces the computed starting text, e.g. when a form without JavaScript posts."""
    if source is not None and source.mailbox_id != mailbox.id:
        raise ValueError("the source message belongs to another mailbox")
    if source is None or mode == Draft.Mode.NEW:
        mode, source = Draft.Mode.NEW, None
    start = fields or draft_initial_fields(mailbox=mailbox, mode=mode, source=source)
    draft = Draft(
        mailbox=mailbox,
        mode=mode,
        thread_id=source.thread_id if source is not None else None,
        reply_to=source if mode in (Draft.Mode.REPLY, Draft.Mode.REPLY_ALL) else None,
        forward_of=source if mode == Draft.Mode.FORWARD else None,
        **_field_values(start),
    )
    draft.full_clean()
    draft.save()
    if mode == Draft.Mode.FORWARD:
        _attachments_carry(draft, source.attachments.all())
    return draft


def _attachments_carry(draft: Draft, attachments: Iterable[Attachment]) -> None:
    """Attach a message's parts to ``draft`` by reference: the same stored blobs, no copies."""
    DraftAttachment.objects.bulk_create(
        DraftAttachment(
            mailbox_id=draft.mailbox_id,
            draft=draft,
            blob_id=attachment.blob_id,
            filename=attachment.filename or "attachment",
            content_type=attachment.content_type,
            size=attachment.size,
        )
        for attachment in attachments
    )


def _field_values(fields: DraftFields) -> dict[str, str]:
    return {
        "to": fields.to,
        "cc": fields.cc,
        "bcc": fields.bcc,
        "subject": fields.subject,
        "body": fields.body,
        "body_format": fields.body_format,
    }


@transaction.atomic
def draft_autosave(*, mailbox: Mailbox, draft_id: int, version: int, fields: DraftFields) -> Draft:
    """Save what the form holds if the draft is still at ``version``; the saved draft has the
    next version. Raises ``DraftConflict`` (nothing written) when another save came first and
    ``Draft.DoesNotExist`` for a draft that is gone or not this mailbox's."""
    draft = Draft.objects.select_for_update().get(mailbox=mailbox, pk=draft_id)
    if draft.version != version:
        raise DraftConflict(current_version=draft.version)
    values = _field_values(fields)
    for name, value in values.items():
        setattr(draft, name, value)
    draft.version += 1
    draft.full_clean()
    draft.save(update_fields=[*values, "version", "updated_at"])
    return draft


def _clean_filename(name: str) -> str:
    """The base name only, without control characters, at most 255 characters."""
    base = os.path.basename(name.replace("\\", "/"))
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if len(base) > 255:
        stem, ext = os.path.splitext(base)
        base = stem[: 255 - len(ext[:20])] + ext[:20]
    return base or "attachment"


def size_text(size: int) -> str:
    """Bytes as people read them: ``512 bytes``, ``3.4 KB``, ``25 MB``."""
    if size < 1024:
        return f"{size} bytes"
    for unit, scale in (("KB", 1024), ("MB", 1024**2), ("GB", 1024**3)):
        if size < scale * 1024 or unit == "GB":
            value = size / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def attachment_size_problem(*, filename: str, size: int) -> str:
    """Why a file of ``size`` bytes cannot be attached, or an empty string."""
    limit = settings.MAILSITE_COMPOSE_MAX_ATTACHMENT_BYTES
    if size > limit:
        return f"“{filename}” is {size_text(size)}; attachments can be at most {size_text(limit)}."
    return ""


@transaction.atomic
def draft_attach(*, draft: Draft, upload: UploadedFile) -> DraftAttachment:
    """Store the uploaded file as a blob (streamed in chunks) and attach it to the draft.
    Raises ``AttachmentRejected`` for a file above the size limit."""
    filename = _clean_filename(upload.name or "")
    problem = attachment_size_problem(filename=filename, size=upload.size or 0)
    if problem:
        raise AttachmentRejected(problem)
    blob = blob_store_file(file=upload)
    content_type = (upload.content_type or "").lower()
    attachment = DraftAttachment(
        mailbox_id=draft.mailbox_id,
        draft=draft,
        blob=blob,
        filename=filename,
        content_type=content_type if _CONTENT_TYPE.match(content_type) else "application/octet-stream",
        size=blob.size,
    )
    attachment.full_clean()
    attachment.save()
    draft.save(update_fields=["updated_at"])
    return attachment


@transaction.atomic
def draft_attachment_remove(*, draft: Draft, attachment_id: int) -> bool:
    """Detach one file (its blob stays: blobs are shared and never deleted here)."""
    deleted, _ = DraftAttachment.objects.filter(mailbox_id=draft.mailbox_id, draft=draft, pk=attachment_id).delete()
    if deleted:
        draft.save(update_fields=["updated_at"])
    return bool(deleted)


@transaction.atomic
def draft_discard(*, draft: Draft) -> None:
    DraftAttachment.objects.filter(mailbox_id=draft.mailbox_id, draft=draft).delete()
    Draft.objects.filter(mailbox_id=draft.mailbox_id, pk=draft.pk).delete()


# --- Towards sending -------------------------------------------------------------------------


def body_html(*, body: str, body_format: str) -> str | None:
    """The HTML alternative for "simple formatting": the Markdown subset rendered without raw
    HTML, then sanitised (sanitising last). ``None`` for plain text."""
    if body_format != Draft.BodyFormat.MARKDOWN:
        return None
    rendered = _MARKDOWN.render(body)
    return nh3.clean(
        rendered,
        tags=_HTML_TAGS,
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def draft_to_outgoing(draft: Draft) -> dict[str, Any]:
    """The fields of ``mailbox.services.sending.OutgoingMail`` for this draft: pure, no queries
    beyond the draft's loaded mailbox and attachments. Recipients are the typed addresses,
    parsed and formatted (``Name <address>``); check them first with ``recipients_check``."""
    mailbox = draft.mailbox
    return {
        # The bare address: the send service adds the display name and checks ownership.
        "from_address": mailbox.address,
        "to": [format_address(n, a) for n, a in parse_addresses(draft.to)],
        "cc": [format_address(n, a) for n, a in parse_addresses(draft.cc)],
        "bcc": [format_address(n, a) for n, a in parse_addresses(draft.bcc)],
        "subject": draft.subject,
        "text": draft.body,
        "html": body_html(body=draft.body, body_format=draft.body_format),
        "attachments": [(a.filename, a.content_type, a.blob.sha256) for a in draft.attachments.all()],
        "in_reply_to_message_id": draft.reply_to_id,
        "forward_of_message_id": draft.forward_of_id,
        "forward_as_attachment": False,
    }


@transaction.atomic
def draft_send(*, draft: Draft, send_at: datetime | None = None) -> Message:
    """Send the draft (at ``send_at``, timezone-aware, when given) through the outbound pipeline
    and discard it, in one transaction; its recipients become contacts (address suggestions).
    Raises ``SendRefused`` (from ``mailbox.services.sending``) with the user's message, and then
    nothing has changed."""
    # Its recipients become contacts as the Sent copy is delivered (``correspondents_of``).
    sent = message_send(mailbox=draft.mailbox, mail=OutgoingMail(**draft_to_outgoing(draft)), send_at=send_at)
    draft_discard(draft=draft)
    return sent


@transaction.atomic
def draft_from_unsent(*, mailbox: Mailbox, message_id: int) -> Draft | None:
    """Undo a send (or cancel a scheduled one): cancel the message's deliveries not yet claimed
    and bring its recipients, subject, text and attachments back as a new draft. ``None`` when
    nothing could be cancelled: the message has left already (or was brought back before). The
    Sent copy stays, as the send service keeps it, a record of what was sent and recalled."""
    message = (
        Message.objects.filter(mailbox=mailbox, pk=message_id)
        .select_related("body")
        .prefetch_related("participants", "attachments")
        .first()
    )
    if message is None or message_send_cancel(mailbox=mailbox, message_id=message.id) == 0:
        return None
    by_role = _participants_by_role(message)
    body = getattr(message, "body", None)
    replied = None
    if message.in_reply_to:
        replied = Message.objects.filter(mailbox=mailbox, message_id=message.in_reply_to).exclude(pk=message.id).first()
    draft = Draft.objects.create(
        mailbox=mailbox,
        mode=Draft.Mode.REPLY if replied else Draft.Mode.NEW,
        thread_id=replied.thread_id if replied else None,
        reply_to=replied,
        **{
            role.value: ", ".join(format_address(n, a) for n, a in by_role.get(role, []))
            for role in (Participant.Role.TO, Participant.Role.CC, Participant.Role.BCC)
        },
        subject=message.subject,
        # The MIME text part ends with the line break the encoder added, not one the user typed.
        body=body.text.replace("\r\n", "\n").rstrip("\n") if body else "",
        # The text part of a formatted message is the Markdown the user typed.
        body_format=Draft.BodyFormat.MARKDOWN if body and body.html.strip() else Draft.BodyFormat.PLAIN,
    )
    _attachments_carry(draft, [a for a in message.attachments.all() if not a.is_inline])
    return draft
