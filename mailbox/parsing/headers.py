"""Header values as Mailsite stores them: unfolded, 8-bit and RFC 2047 decoded, bounded; never raising.

Works on the raw values the ``compat32`` parser keeps (8-bit bytes arrive as surrogate escapes), so
only the handful of headers Mailsite stores are ever decoded, each once.
"""

import binascii
import re
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from urllib.parse import unquote_to_bytes

from mailbox.parsing.charsets import decode_text
from mailbox.parsing.results import Address

MAX_TEXT_HEADER = 2_000  # characters kept of a decoded subject: the 210 KB one stays in the raw blob
MAX_ADDRESS_HEADER = 100_000  # characters of one role's address headers that are read
MAX_ADDRESSES = 1_000  # per role
MAX_REFERENCES = 100
MAX_ID_LENGTH = 995  # Message-ID columns hold 998 characters

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SPACE = re.compile(r"\s+")
# C0 controls, DEL and lone surrogates (UTF-7 can produce them): PostgreSQL text refuses NUL, UTF-8
# refuses surrogates.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# RFC 2047 encoded word, leniently: spaces inside the encoded text (broken encoders) are accepted.
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?]*)\?=")
_BASE64_JUNK = re.compile(r"[^A-Za-z0-9+/]")
_MESSAGE_ID = re.compile(r"<([^<>\s@]+@[^<>\s]+)>")
_BARE_ID = re.compile(r"^[^<>\s@]+@[^<>\s@]+$")
_AUTH_RESULT = re.compile(r"\b(spf|dkim|dmarc)=([a-z]+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]*\)")
_LIST_ID = re.compile(r"<([^<>\s]+)>")
_PLAIN_ADDRESS = re.compile(r"^[^@\s\"'<>(),;:]+@[^@\s\"'<>(),;:]+$")
_ADDR_SPEC = r'[^<>\s@",;:()\\\[\]]+@[^<>\s@",;:()\\\[\]]+'
# Possessive and class-disjoint so that no input makes it backtrack more than linearly.
_SIMPLE_MAILBOX = re.compile(
    r'\s*+(?:(?:"((?:[^"\\]|\\.)*+)"\s*|([^"<>,;:@()\\]*))<(' + _ADDR_SPEC + r")>"
    r"|(" + _ADDR_SPEC + r")(?:\s*\(([^()\\]*)\))?)?\s*(?:,|$)",
    re.DOTALL,
)
_PARAM = re.compile(r';\s*([^\s=;"]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"?|[^;]*))?', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
# In parameters only \" and \\ are read as escapes: Windows clients write paths unescaped (C:\TEMP\a.png).
_PARAM_QUOTED_PAIR = re.compile(r'\\([\\"])')
_EARLIEST_DATE = datetime(1971, 1, 1, tzinfo=UTC)


class HeaderIndex:
    """A message's raw header values by lowercase name, in order; built in one pass."""

    __slots__ = ("_values", "charset")

    def __init__(self, msg: Message, charset: str | None = None) -> None:
        values: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            values.setdefault(str(name).strip().lower(), []).append(str(value))
        self._values = values
        # The message's declared charset: how legacy clients wrote undeclared 8-bit headers.
        self.charset = charset

    def all(self, name: str) -> list[str]:
        return self._values.get(name, [])

    def first(self, name: str) -> str:
        found = self._values.get(name)
        return found[0] if found else ""

    def text(self, name: str, limit: int = MAX_TEXT_HEADER) -> str:
        """The first ``name`` header as display text, decoded and bounded."""
        return header_text(self.first(name), limit, self.charset)

    def addresses(self, names: tuple[str, ...]) -> list[Address]:
        return addresses([value for name in names for value in self.all(name)], self.charset)


def storable(text: str) -> str:
    """``text`` without what PostgreSQL or UTF-8 refuse (NUL and other controls, lone surrogates)."""
    return _UNSTORABLE.sub("", text)


def unfolded(value: str) -> str:
    return _LINE_BREAK.sub("", value)


def to_unicode(value: str, fallback: str | None = None) -> str:
    """A raw header value with its 8-bit bytes (surrogate escapes) read as UTF-8, else as the
    ``fallback`` charset, else windows-1252."""
    if value.isascii():
        return value
    return decode_text(_raw_bytes(value), None, fallback)


def _raw_bytes(value: str) -> bytes:
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace")


def header_text(value: str, limit: int = MAX_TEXT_HEADER, fallback: str | None = None) -> str:
    text = decode_words(unfolded(value), fallback)
    return _SPACE.sub(" ", storable(text)).strip()[:limit]


def decode_words(text: str, fallback: str | None = None) -> str:
    """Decode RFC 2047 encoded words, also malformed ones (raw 8-bit bytes inside, spaces); adjacent
    words of one charset are joined as bytes first, so a character split across two words survives.
    Text between words is read as in ``to_unicode``."""
    if "=?" not in text:
        return to_unicode(text, fallback)
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    end = 0
    for word in _ENCODED_WORD.finditer(text):
        gap = text[end : word.start()]
        if gap and not (pending_charset is not None and gap.isspace()):
            out.append(_flush(pending, pending_charset))
            pending_charset = None
            out.append(to_unicode(gap, fallback))
        charset = word.group(1)
        if pending_charset is not None and charset.lower() != pending_charset.lower():
            out.append(_flush(pending, pending_charset))
        pending_charset = charset
        pending += _word_bytes(word.group(2), word.group(3))
        end = word.end()
    out.append(_flush(pending, pending_charset))
    out.append(to_unicode(text[end:], fallback))
    return "".join(out)


def _flush(pending: bytearray, charset: str | None) -> str:
    if charset is None:
        return ""
    text = decode_text(bytes(pending), charset)
    pending.clear()
    return text


def _word_bytes(encoding: str, payload: str) -> bytes:
    try:
        if encoding in "qQ":
            return binascii.a2b_qp(_raw_bytes(payload), header=True)
        clean = _BASE64_JUNK.sub("", payload)
        if len(clean) % 4 == 1:
            clean = clean[:-1]
        return binascii.a2b_base64(clean + "=" * (-len(clean) % 4))
    except (binascii.Error, ValueError):
        return _raw_bytes(payload)


def addresses(values: list[str], fallback: str | None = None) -> list[Address]:
    """Every well-formed address in the given header values, lowercase, de-duplicated, bounded."""
    if not values:
        return []
    # Parsed before decoding, so an encoded name holding a comma or raw 8-bit bytes stays one name.
    joined = unfolded(", ".join(values))[:MAX_ADDRESS_HEADER]
    found = _addresses(joined, fallback)
    if not found and "=?" in joined:
        # Some senders encode the whole header, address included.
        found = _addresses(decode_words(joined, fallback), fallback)
    return found


def _addresses(value: str, fallback: str | None) -> list[Address]:
    pairs = _simple_addresses(value)
    if pairs is None:
        try:
            pairs = getaddresses([value])
        except Exception:  # noqa: BLE001 - the address parser has raised IndexError and others on bad input
            return []
    found: dict[str, Address] = {}
    for name, address in pairs:
        address = storable(to_unicode(address)).strip().lower()
        if len(address) > 320 or not _PLAIN_ADDRESS.match(address) or address in found:
            continue
        display = _SPACE.sub(" ", storable(decode_words(name, fallback))).strip().strip("\"'").strip()
        found[address] = Address(display[:255], address)
        if len(found) >= MAX_ADDRESSES:
            break
    return list(found.values())


def _simple_addresses(value: str) -> list[tuple[str, str]] | None:
    """The common shapes (``a@b``, ``Name <a@b>``, ``"Name, Q." <a@b>``, ``a@b (Name)``) in one
    regular-expression pass; ``None`` sends anything else to the standard library's full parser."""
    pairs = []
    position = 0
    while position < len(value):
        item = _SIMPLE_MAILBOX.match(value, position)
        if item is None or item.end() == position:
            return None
        position = item.end()
        quoted, plain, angle, bare, comment = item.groups()
        if angle:
            name = _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else plain
            pairs.append((_SPACE.sub(" ", name).strip(), angle))
        elif bare:
            pairs.append((_SPACE.sub(" ", comment or "").strip(), bare))
    return pairs


def message_ids(value: str) -> list[str]:
    """Bracketed ids in order, de-duplicated; ids too long to store are dropped."""
    text = to_unicode(unfolded(value))
    return [i for i in dict.fromkeys(_MESSAGE_ID.findall(text)) if len(i) <= MAX_ID_LENGTH and i.isprintable()]


def own_message_id(values: list[str]) -> str:
    """The message's id: one bracketed id, or a bare ``local@domain``. Empty when absent or when
    several Message-ID headers disagree (then none can be trusted)."""
    found: list[str] = []
    for value in values:
        ids = message_ids(value)
        if not ids:
            bare = to_unicode(unfolded(value)).strip()
            ids = [bare] if _BARE_ID.match(bare) and len(bare) <= MAX_ID_LENGTH and bare.isprintable() else []
        found += ids[:1]
    distinct = list(dict.fromkeys(found))
    return distinct[0] if len(distinct) == 1 else ""


def references(value: str) -> list[str]:
    """References in order; a long chain keeps its root and the most recent ids (RFC 5322 3.6.4)."""
    ids = message_ids(value)
    if len(ids) > MAX_REFERENCES:
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1) :]
    return ids


def date(value: str, received_at: datetime) -> datetime:
    """The Date header in UTC; the receive time when it is missing, unreadable or absurd."""
    text = to_unicode(unfolded(value)).strip()[:200]
    try:
        parsed = parsedate_to_datetime(text)
    except Exception:  # noqa: BLE001 - TypeError, ValueError, IndexError, OverflowError seen on bad dates
        return received_at
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # A date in the far future or before e-mail existed is a broken clock, not a fact.
    if not _EARLIEST_DATE <= parsed <= received_at + timedelta(days=2):
        return received_at
    return parsed.astimezone(UTC)


def authentication(values: list[str], trusted: frozenset[str]) -> dict[str, str]:
    """{"spf": "pass", "dkim": "fail", "dmarc": "pass"} from the top-most Authentication-Results
    header whose authserv-id is one of ``trusted`` (lowercase). RFC 8601 §5: a header naming
    anyone else may have been written by the sender, so it proves nothing either way."""
    for value in values:
        text = unfolded(value)[:20_000]
        if authserv_id(text) in trusted:
            results: dict[str, str] = {}
            for method, result in _AUTH_RESULT.findall(text.partition(";")[2]):
                results.setdefault(method.lower(), result.lower())
            return results
    return {}


def authserv_id(value: str) -> str:
    """The authserv-id of an Authentication-Results value (before the first ``;``, without
    comments or the optional version number), lowercase."""
    head = _COMMENT.sub(" ", value.partition(";")[0]).split()
    return head[0].strip('"').lower() if head else ""


def list_id(value: str) -> str:
    """The list's identity per RFC 2919: the bracketed id, without the description that may change."""
    text = header_text(value)
    match = _LIST_ID.search(text)
    return (match.group(1) if match else text).strip().lower()[:255]


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """A Content-Type-like header as (lowercase main value, {lowercase name: value}), RFC 2231
    continuations and charsets decoded. Linear time: the standard library's is quadratic in the
    number of semicolons, which hostile mail exploits."""
    text = to_unicode(unfolded(value))
    main, _, rest = text.partition(";")
    raw: dict[str, str] = {}
    for param in _PARAM.finditer(";" + rest):
        raw.setdefault(param.group(1).lower(), _unquoted((param.group(2) or "").strip()))
    if any("*" in name for name in raw):
        raw = _rfc2231(raw)
    return main.strip().lower(), raw


def _unquoted(value: str) -> str:
    if not value.startswith('"'):
        return value
    inner = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
    return _PARAM_QUOTED_PAIR.sub(r"\1", inner) if "\\" in inner else inner


def _rfc2231(raw: dict[str, str]) -> dict[str, str]:
    """Join ``name*0*=utf-8''a%20b; name*1*=c`` style parameters into ``name``."""
    params = {name: value for name, value in raw.items() if "*" not in name}
    pieces: dict[str, list[tuple[int, bool, str]]] = {}
    for key, value in raw.items():
        name, _, section = key.partition("*")
        if not section:
            pieces.setdefault(name, []).append((0, True, value))
            continue
        encoded = section.endswith("*")
        number = section.rstrip("*")
        if number.isdigit() and len(number) <= 3:
            pieces.setdefault(name, []).append((int(number), encoded, value))
    for name, parts in pieces.items():
        params[name] = _joined_sections(sorted(parts, key=lambda piece: piece[0]))
    return params


def _joined_sections(parts: list[tuple[int, bool, str]]) -> str:
    charset = None
    data = bytearray()
    for position, (_, encoded, value) in enumerate(parts):
        if encoded and position == 0 and value.count("'") >= 2:
            charset, _, value = value.split("'", 2)
        data += unquote_to_bytes(value) if encoded else value.encode("utf-8", "replace")
    return decode_text(bytes(data), charset)
