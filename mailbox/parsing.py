"""Raw RFC 5322 bytes → the fields Mailsite stores. Defensive: never raises on bad mail.

Real mail carries unknown charsets, malformed address headers and broken MIME; every header
and body access here expects the standard library to raise and falls back instead.
"""

import hashlib
import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime

MAX_MIME_DEPTH = 20
SNIPPET_LENGTH = 200
_MESSAGE_ID = re.compile(r"<([^<>\s]{1,990}@[^<>\s]{1,990})>")
_AUTH_RESULT = re.compile(r"\b(spf|dkim|dmarc)=([a-z]+)", re.IGNORECASE)
_IDENTIFYING_HEADERS = ("From", "Sender", "To", "Subject", "Date", "Message-ID")
_LIST_ID = re.compile(r"<([^<>\s]+)>")
_PLAIN_ADDRESS = re.compile(r"^[^@\s\"'<>(),;:]+@[^@\s\"'<>(),;:]+$")
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Address:
    name: str
    address: str


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    content_id: str
    is_inline: bool
    data: bytes


@dataclass
class ParsedMessage:
    message_id: str
    in_reply_to: str
    references: list[str]
    subject: str
    date: datetime
    list_id: str
    size: int
    addresses: dict[str, list[Address]]  # role → addresses: from, sender, reply_to, to, cc, bcc, delivered_to
    text: str = ""
    html: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    # SPF/DKIM/DMARC results from the top-most Authentication-Results header (added by our edge).
    authentication: dict[str, str] = field(default_factory=dict)
    list_unsubscribe: str = ""
    # True when the bytes carry no recognisable message header at all: quarantine, don't deliver.
    is_malformed: bool = False

    @property
    def sender(self) -> Address:
        found = self.addresses.get("from") or self.addresses.get("sender") or [Address("", "")]
        return found[0]

    @property
    def snippet(self) -> str:
        source = self.text or _TAGS.sub(" ", self.html)
        return _SPACE.sub(" ", html_lib.unescape(source)).strip()[:SNIPPET_LENGTH]


_ADDRESS_HEADERS = {
    "from": "From",
    "sender": "Sender",
    "reply_to": "Reply-To",
    "to": "To",
    "cc": "Cc",
    "bcc": "Bcc",
    "delivered_to": "Delivered-To",
}


def parse_message(raw: bytes, *, received_at: datetime) -> ParsedMessage:
    """Parse ``raw``; a missing Message-ID is synthesised from the content hash, a missing or absurd
    Date falls back to ``received_at``."""
    msg = message_from_bytes(raw, policy=policy.default)
    parsed = ParsedMessage(
        message_id=_first_id(_header(msg, "Message-ID")) or f"{hashlib.sha256(raw).hexdigest()[:40]}@mailsite.invalid",
        in_reply_to=(_message_ids(_header(msg, "In-Reply-To")) or [""])[-1],
        references=_message_ids(_header(msg, "References")),
        subject=_header(msg, "Subject"),
        date=_date(_header(msg, "Date"), received_at),
        list_id=_list_id(_header(msg, "List-Id")),
        authentication=_authentication(_header(msg, "Authentication-Results")),
        list_unsubscribe=_header(msg, "List-Unsubscribe")[:2000],
        is_malformed=not any(_header(msg, name) for name in _IDENTIFYING_HEADERS),
        size=len(raw),
        addresses={role: _addresses(msg, name) for role, name in _ADDRESS_HEADERS.items()},
    )
    _collect_parts(msg, parsed, depth=0)
    return parsed


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - the header parser raises many kinds of errors on bad input
        value = _raw_header(msg, name)
    return _SPACE.sub(" ", str(value or "")).strip()


def _raw_header(msg: Message, name: str) -> str:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _message_ids(value: str) -> list[str]:
    return list(dict.fromkeys(_MESSAGE_ID.findall(value)))


def _authentication(value: str) -> dict[str, str]:
    """{"spf": "pass", "dkim": "fail", "dmarc": "pass"} from one Authentication-Results header."""
    results: dict[str, str] = {}
    for method, result in _AUTH_RESULT.findall(value):
        results.setdefault(method.lower(), result.lower())
    return results


def _list_id(value: str) -> str:
    """The list's identity per RFC 2919: the bracketed id, without the description that may change."""
    match = _LIST_ID.search(value)
    return (match.group(1) if match else value).strip().lower()[:255]


def _first_id(value: str) -> str:
    ids = _message_ids(value)
    return ids[0] if ids else ""


def _date(value: str, received_at: datetime) -> datetime:
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return received_at
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    # A date in the far future or before e-mail existed is a broken clock, not a fact.
    if not datetime(1971, 1, 1, tzinfo=UTC) <= date <= received_at + timedelta(days=2):
        return received_at
    return date.astimezone(UTC)


def _addresses(msg: Message, name: str) -> list[Address]:
    values = [str(v) for k, v in msg.raw_items() if k.lower() == name.lower()]
    try:
        pairs = getaddresses([_decoded(v) for v in values])
    except Exception:  # noqa: BLE001
        return []
    found = [(display, addr.strip().lower()) for display, addr in pairs]
    return [Address(display[:255], addr[:320]) for display, addr in found if _PLAIN_ADDRESS.match(addr)]


def _decoded(value: str) -> str:
    """An RFC 2047 encoded header as text, whatever its charset claims."""
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001
        return value


def _collect_parts(part: Message, parsed: ParsedMessage, *, depth: int) -> None:
    if depth > MAX_MIME_DEPTH:
        return
    if part.is_multipart():
        for child in part.get_payload() or []:
            if isinstance(child, Message):
                _collect_parts(child, parsed, depth=depth + 1)
        return
    content_type = _content_type(part)
    disposition = (part.get_content_disposition() if _safe(part.get_content_disposition) else None) or ""
    filename = _safe(part.get_filename) or ""
    if disposition != "attachment" and not filename and content_type in ("text/plain", "text/html"):
        text = _text(part)
        if content_type == "text/plain" and not parsed.text:
            parsed.text = text
        elif content_type == "text/html" and not parsed.html:
            parsed.html = text
        return
    parsed.attachments.append(
        ParsedAttachment(
            filename=str(filename)[:255],
            content_type=content_type[:255],
            content_id=_first_id(_header(part, "Content-ID")) or _header(part, "Content-ID").strip("<>")[:998],
            is_inline=disposition == "inline",
            data=_safe(lambda: part.get_payload(decode=True)) or b"",
        )
    )


def _safe(call):  # noqa: ANN001, ANN202 - tiny local guard
    try:
        return call()
    except Exception:  # noqa: BLE001
        return None


def _content_type(part: Message) -> str:
    return (_safe(part.get_content_type) or "application/octet-stream").lower()


def _text(part: Message) -> str:
    """The part's text with line endings as Python writes them (wire format is CRLF)."""
    return _decoded_text(part).replace("\r\n", "\n")


def _decoded_text(part: Message) -> str:
    if isinstance(part, EmailMessage):
        content = _safe(part.get_content)
        if isinstance(content, str):
            return content
    payload = _safe(lambda: part.get_payload(decode=True)) or b""
    charset = _safe(part.get_content_charset) or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("latin-1", errors="replace")
