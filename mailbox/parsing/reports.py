"""Reports about other messages: bounces (RFC 3464 DSN), read receipts (RFC 8098 MDN) and complaints
(RFC 5965 ARF), reduced to what links them to the message they report on."""

import re
from email.message import Message
from email.parser import Parser
from email.policy import compat32

from mailbox.parsing.charsets import decode_text
from mailbox.parsing.headers import HeaderIndex, addresses, header_text, message_ids, own_message_id
from mailbox.parsing.mime import Part, Structure, payload_bytes
from mailbox.parsing.results import MessageReport, RecipientStatus

MAX_RECIPIENTS = 200
_STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_BLOCK_SEPARATOR = re.compile(r"\r?\n[ \t]*\r?\n")
_DAEMON = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_ORIGINAL_MARKER = re.compile(r"original message|undelivered message|message headers follow", re.IGNORECASE)
_ID_LINE = re.compile(r"^message-id:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_REPORT_TYPES = {
    "message/delivery-status": "delivery-status",
    "message/global-delivery-status": "delivery-status",
    "message/disposition-notification": "disposition-notification",
    "message/global-disposition-notification": "disposition-notification",
    "message/feedback-report": "feedback-report",
}


def report_of(found: Structure, headers: HeaderIndex, text: str) -> MessageReport | None:
    """The report this message carries, or None for ordinary mail."""
    if found.report_parts:
        content_type, part = found.report_parts[0]
        return _machine_readable(_REPORT_TYPES[content_type], part, found)
    return _plain_bounce(found, headers, text)


def _machine_readable(report_type: str, part: Message, found: Structure) -> MessageReport:
    blocks = _field_blocks(part)
    message_fields = blocks[0] if blocks else {}
    original = _original_message_id(found)
    if report_type == "delivery-status":
        recipients = tuple(_recipient(block) for block in blocks[1 : MAX_RECIPIENTS + 1])
        return MessageReport(
            report_type,
            original_message_id=original,
            recipients=tuple(r for r in recipients if r.recipient or r.status),
            reporting_mta=_typed_value(message_fields.get("reporting-mta", "")),
        )
    if report_type == "disposition-notification":
        return MessageReport(
            report_type,
            original_message_id=_first_id(message_fields.get("original-message-id", "")) or original,
            disposition=message_fields.get("disposition", "")[:255],
        )
    return MessageReport(
        report_type,
        original_message_id=original,
        feedback_type=message_fields.get("feedback-type", "")[:100].lower(),
    )


def _field_blocks(part: Message) -> list[dict[str, str]]:
    """The report's field blocks (per-message, then per-recipient), each as {lowercase name: text}.

    The parser splits message/delivery-status into blocks and parses the other report types as an
    embedded message; a transfer-encoded report arrives as one text that is split here."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [child for child in payload if isinstance(child, Message)]
    else:
        text = decode_text(payload_bytes(part, "\n"), None)
        blocks = [_parsed_block(block) for block in _BLOCK_SEPARATOR.split(text.strip())[: MAX_RECIPIENTS + 1]]
    return [_fields(block) for block in blocks]


def _parsed_block(text: str) -> Message:
    try:
        return Parser(_class=Part, policy=compat32).parsestr(text, headersonly=True)
    except Exception:  # noqa: BLE001
        return Part(policy=compat32)


def _fields(block: Message) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in block.raw_items():
        fields.setdefault(str(name).strip().lower(), header_text(str(value), 1_000))
    return fields


def _recipient(fields: dict[str, str]) -> RecipientStatus:
    recipient = _typed_value(fields.get("final-recipient") or fields.get("original-recipient", ""))
    status = _STATUS_CODE.search(fields.get("status", ""))
    return RecipientStatus(
        recipient=recipient.strip("<>").lower()[:320],
        action=(fields.get("action", "").split() or [""])[0].lower()[:20],
        status=status.group(1) if status else "",
        diagnostic=fields.get("diagnostic-code", "")[:1_000],
        remote_mta=_typed_value(fields.get("remote-mta", ""))[:255],
    )


def _typed_value(value: str) -> str:
    """``rfc822; user@example.org`` → ``user@example.org`` (the address or host after its type)."""
    return value.partition(";")[2].strip() if ";" in value else value.strip()


def _first_id(value: str) -> str:
    ids = message_ids(value)
    return ids[0] if ids else ""


def _original_message_id(found: Structure) -> str:
    for _content_type, part in found.original_parts:
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            original = payload[0]  # message/rfc822: the parser already took it apart
        else:
            original = _parsed_block(decode_text(payload_bytes(part, "\n"), None))
        found_id = own_message_id(HeaderIndex(original).all("message-id"))
        if found_id:
            return found_id
    return ""


def _plain_bounce(found: Structure, headers: HeaderIndex, text: str) -> MessageReport | None:
    """A bounce without a machine-readable part (older Gmail, qmail): from a mailer daemon or naming
    failed recipients; the original id is read from an attached or quoted copy of the message."""
    failed = addresses(headers.all("x-failed-recipients"))
    senders = addresses(headers.all("from"))
    from_daemon = bool(senders) and bool(_DAEMON.match(senders[0].address))
    if not failed and not from_daemon:
        return None
    original = ""
    for _content_type, part in _attached_messages(found):
        original = own_message_id(HeaderIndex(part).all("message-id"))
        if original:
            break
    marker = _ORIGINAL_MARKER.search(text)
    if not original and marker is not None:
        quoted = _ID_LINE.search(text, marker.end())
        original = _first_id(quoted.group(1)) if quoted else ""
    if not original and not failed:
        return None
    recipients = tuple(RecipientStatus(a.address, "failed", "") for a in failed[:MAX_RECIPIENTS])
    return MessageReport("delivery-status", original_message_id=original, recipients=recipients, heuristic=True)


def _attached_messages(found: Structure) -> list[tuple[str, Message]]:
    attached = []
    for leaf in found.attachments:
        payload = leaf.part.get_payload()
        if leaf.content_type == "message/rfc822" and isinstance(payload, list) and payload:
            attached.append((leaf.content_type, payload[0]))
    return attached
