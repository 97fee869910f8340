"""The MIME tree → text body, HTML body and attachments, the way JMAP (RFC 8621 4.1.4) picks them.

The tree comes from the standard library's ``compat32`` parser, which keeps raw header values and
never decodes a header we do not ask for (the modern policy's header objects cost 50-200 µs each).
Broken structure is repaired where the intent is clear (a boundary that is declared wrongly but
present), bounded where it is hostile (nesting, part count), and never raises.
"""

import html as html_lib
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from mailbox.parsing.charsets import decode_text
from mailbox.parsing.headers import header_params, header_text, message_ids, storable, to_unicode, unfolded
from mailbox.parsing.results import ParsedAttachment

MAX_MIME_DEPTH = 20
MAX_PARTS = 1_000  # leaves read per message; positions are stored as small integers
# A line that opens a MIME part: "--boundary", then a header on the next line.
_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,200})[ \t]*\r?\n[A-Za-z][A-Za-z0-9-]*:", re.MULTILINE)
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_TWO_HEADER_LINES = re.compile(rb"[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n[\x21-\x39\x3b-\x7e]+:")
_CID_REFERENCE = re.compile(r"cid:([^\"'\s<>()]+)", re.IGNORECASE)
_MEDIA_TYPE = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]{1,127}/[a-z0-9!#$%&'*+.^_`|~-]{1,127}")
_BODY_TYPES = ("text/plain", "text/html")
_MEDIA_PREFIXES = ("image/", "audio/", "video/")
ORIGINAL_MESSAGE_TYPES = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers", "message/global-headers"}
)
REPORT_PART_TYPES = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/global-disposition-notification",
        "message/feedback-report",
    }
)


class Part(Message):
    """A ``compat32`` message whose parameter look-ups run in linear time (see ``header_params``)."""

    def get_param(self, param, failobj=None, header="content-type", unquote=True):  # noqa: ANN001, ANN201
        value = first_raw(self, header)
        if value is None:
            return failobj
        return header_params(value)[1].get(param.lower(), failobj)


def first_raw(part: Message, name: str) -> str | None:
    lowered = name.lower()
    for key, value in part.raw_items():
        if key.lower() == lowered:
            return str(value)
    return None


def parse_tree(raw: bytes, repairs: list[str]) -> Message:
    """The MIME tree of ``raw``; headers only, with the body as one text, when the structure defeats
    the parser (nesting deep enough to exhaust the stack)."""
    junk = _leading_junk(raw)
    if junk:
        raw = raw[junk:]
        repairs.append("leading-junk-skipped")
    try:
        return BytesParser(_class=Part, policy=compat32).parsebytes(raw)
    except RecursionError:
        repairs.append("mime-too-deep")
    except Exception:  # noqa: BLE001 - the parser is meant not to raise; keep the message if it does
        repairs.append("mime-unparseable")
    try:
        root = BytesParser(_class=Part, policy=compat32).parsebytes(raw, headersonly=True)
    except Exception:  # noqa: BLE001
        return Part(policy=compat32)
    # Hand the body over as text; do not try the structure again.
    del root["Content-Type"]
    root["Content-Type"] = "text/plain"
    return root


def _leading_junk(raw: bytes) -> int:
    """Bytes to skip when up to three mangled lines ("Fro :m ...") precede the header section, which
    would otherwise end before it began; 0 when the message starts as a message should."""
    if raw[:1] in (b"", b"\r", b"\n", b" ", b"\t") or raw.startswith(b"From ") or _HEADER_LINE.match(raw):
        return 0
    offset = 0
    for _ in range(3):
        end = raw.find(b"\n", offset, offset + 1_000)
        if end < 0:
            return 0
        offset = end + 1
        if _TWO_HEADER_LINES.match(raw, offset):
            return offset
    return 0


@dataclass
class _Leaf:
    part: Message
    content_type: str
    disposition: str
    filename: str
    in_related: bool


@dataclass
class Structure:
    """The walk's findings: body parts per JMAP, every attachment, and the parts of a report."""

    text_body: list[_Leaf] = field(default_factory=list)
    html_body: list[_Leaf] = field(default_factory=list)
    attachments: list[_Leaf] = field(default_factory=list)
    report_parts: list[tuple[str, Message]] = field(default_factory=list)
    original_parts: list[tuple[str, Message]] = field(default_factory=list)
    leaves: int = 0


class _Walker:
    def __init__(self, repairs: list[str]) -> None:
        self.found = Structure()
        self.repairs = repairs

    def walk(
        self,
        parts: list[Message],
        multipart_type: str,
        *,
        in_alternative: bool,
        html_body: list[_Leaf] | None,
        text_body: list[_Leaf] | None,
        depth: int,
    ) -> None:
        """RFC 8621's parseStructure, plus: every non-text leaf is an attachment for us, and the
        parts of a multipart/report are noted."""
        text_length = len(text_body) if text_body is not None else -1
        html_length = len(html_body) if html_body is not None else -1
        for index, part in enumerate(parts):
            content_type = content_type_of(part)
            if content_type.startswith("multipart/"):
                children = self._children(part, depth)
                if children is not None:
                    subtype = content_type[len("multipart/") :]
                    self.walk(
                        children,
                        subtype,
                        in_alternative=in_alternative or subtype == "alternative",
                        html_body=html_body,
                        text_body=text_body,
                        depth=depth + 1,
                    )
                    continue
                content_type = "text/plain"  # a multipart without parts: its body is text
            if self.found.leaves >= MAX_PARTS:
                if "parts-limit" not in self.repairs:
                    self.repairs.append("parts-limit")
                return
            self.found.leaves += 1
            leaf = self._leaf(part, content_type, multipart_type)
            if multipart_type == "report":
                self._note_report_part(leaf)
            if not self._is_inline(leaf, index, multipart_type):
                self.found.attachments.append(leaf)
                continue
            if content_type not in _BODY_TYPES:
                self.found.attachments.append(leaf)  # inline media: ours is an attachment row either way
            if multipart_type == "alternative":
                if content_type == "text/plain" and text_body is not None:
                    text_body.append(leaf)
                elif content_type == "text/html" and html_body is not None:
                    html_body.append(leaf)
                continue
            if in_alternative:
                if content_type == "text/plain":
                    html_body = None
                if content_type == "text/html":
                    text_body = None
            if text_body is not None:
                text_body.append(leaf)
            if html_body is not None:
                html_body.append(leaf)
        if multipart_type == "alternative" and text_body is not None and html_body is not None:
            if text_length == len(text_body) and html_length != len(html_body):
                text_body.extend(html_body[html_length:])
            if html_length == len(html_body) and text_length != len(text_body):
                html_body.extend(text_body[text_length:])

    def _children(self, part: Message, depth: int) -> list[Message] | None:
        if depth >= MAX_MIME_DEPTH:
            if "depth-limit" not in self.repairs:
                self.repairs.append("depth-limit")
            return []
        payload = part.get_payload()
        if isinstance(payload, list):
            return [child for child in payload if isinstance(child, Message)]
        recovered = _recover_boundary(payload) if isinstance(payload, str) else None
        if recovered is not None:
            self.repairs.append("boundary-recovered")
        return recovered

    def _leaf(self, part: Message, content_type: str, multipart_type: str) -> _Leaf:
        disposition, params = header_params(first_raw(part, "content-disposition") or "")
        filename = params.get("filename") or _content_type_param(part, "name")
        return _Leaf(part, content_type, disposition, _clean_filename(filename), multipart_type == "related")

    @staticmethod
    def _is_inline(leaf: _Leaf, index: int, multipart_type: str) -> bool:
        if leaf.disposition == "attachment":
            return False
        is_media = leaf.content_type.startswith(_MEDIA_PREFIXES)
        if leaf.content_type not in _BODY_TYPES and not is_media:
            return False
        return index == 0 or (multipart_type != "related" and (is_media or not leaf.filename))

    def _note_report_part(self, leaf: _Leaf) -> None:
        if leaf.content_type in REPORT_PART_TYPES:
            self.found.report_parts.append((leaf.content_type, leaf.part))
        elif leaf.content_type in ORIGINAL_MESSAGE_TYPES:
            self.found.original_parts.append((leaf.content_type, leaf.part))


def content_type_of(part: Message) -> str:
    value = first_raw(part, "content-type")
    if value is None:
        return part.get_default_type()
    # The leading type/subtype token, even when a broken client forgot the ";" before the parameters.
    found = _MEDIA_TYPE.match(to_unicode(unfolded(value)).strip().lower())
    return found.group() if found else "text/plain"  # RFC 2045 5.2: unreadable means text/plain


def _content_type_param(part: Message, name: str) -> str:
    return header_params(first_raw(part, "content-type") or "")[1].get(name, "")


def _clean_filename(value: str) -> str:
    """A display file name: encoded words decoded (common though not allowed in parameters),
    directory parts a sender's client leaked dropped."""
    name = header_text(value, 1_000)
    return name.replace("\\", "/").rsplit("/", 1)[-1].strip()[:255]


def _recover_boundary(body: str) -> list[Message] | None:
    """Parts of a multipart whose boundary was missing or wrong, if its body shows one plainly."""
    match = _BOUNDARY_LINE.search(body)
    if match is None:
        return None
    head = f'Content-Type: multipart/mixed; boundary="{match.group(1)}"\n\n'
    try:
        repaired = BytesParser(_class=Part, policy=compat32).parsebytes(
            head.encode("utf-8", "surrogateescape") + body.encode("utf-8", "surrogateescape")
        )
    except Exception:  # noqa: BLE001 - RecursionError on hostile nesting, or anything else: give up
        return None
    children = repaired.get_payload()
    if not isinstance(children, list) or not children:
        return None
    return [child for child in children if isinstance(child, Message)]


def structure_of(root: Message, repairs: list[str]) -> Structure:
    """Walk the tree once: body parts, attachments and report parts (repairs noted in ``repairs``)."""
    walker = _Walker(repairs)
    text_body: list[_Leaf] = []
    html_body: list[_Leaf] = []
    walker.walk([root], "mixed", in_alternative=False, html_body=html_body, text_body=text_body, depth=0)
    walker.found.text_body = text_body
    walker.found.html_body = html_body
    return walker.found


def declared_charset(root: Message, found: Structure) -> str | None:
    """The charset the message declares for its text: its own, else its first body part's."""
    for part in (root, *(leaf.part for leaf in found.text_body + found.html_body)):
        charset = header_params(first_raw(part, "content-type") or "")[1].get("charset")
        if charset:
            return charset
    return None


class BodyReader:
    """Decodes each body part once, with charset fallbacks."""

    def __init__(self) -> None:
        self._decoded: dict[int, str] = {}

    def text(self, leaf: _Leaf) -> str:
        key = id(leaf.part)
        if key not in self._decoded:
            charset = header_params(first_raw(leaf.part, "content-type") or "")[1].get("charset")
            text = decode_text(payload_bytes(leaf.part, "\n"), charset)
            self._decoded[key] = storable(text.replace("\r\n", "\n"))
        return self._decoded[key]

    def bodies(self, found: Structure) -> tuple[str, str]:
        """(text, html): the text/plain body parts joined; the HTML body parts joined, with text parts
        that sit between them shown preformatted. No HTML part means no HTML body."""
        text = "\n".join(self.text(leaf) for leaf in found.text_body if leaf.content_type == "text/plain")
        html_leaves = [leaf for leaf in found.html_body if leaf.content_type in _BODY_TYPES]
        if not any(leaf.content_type == "text/html" for leaf in html_leaves):
            return text, ""
        html = "\n".join(
            self.text(leaf) if leaf.content_type == "text/html" else f"<pre>{html_lib.escape(self.text(leaf))}</pre>"
            for leaf in html_leaves
        )
        return text, html


def attachments(found: Structure, html: str, linesep: str) -> list[ParsedAttachment]:
    referenced = {reference.lower() for reference in _CID_REFERENCE.findall(html)} if "cid:" in html.lower() else set()
    result = []
    for leaf in found.attachments:
        content_id = _content_id(leaf.part)
        is_inline = bool(content_id) and leaf.disposition != "attachment"
        is_inline = is_inline and (leaf.in_related or content_id.lower() in referenced)
        result.append(
            ParsedAttachment(
                filename=leaf.filename,
                content_type=leaf.content_type[:255],
                content_id=content_id,
                is_inline=is_inline,
                data=payload_bytes(leaf.part, linesep),
            )
        )
    return result


def _content_id(part: Message) -> str:
    value = first_raw(part, "content-id") or ""
    ids = message_ids(value)
    if ids:
        return ids[0]
    return storable(to_unicode(unfolded(value))).strip().strip("<>").strip()[:998]


def payload_bytes(part: Message, linesep: str) -> bytes:
    """A leaf's content, transfer-decoded; an embedded message as its bytes. Never raises."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return serialised(part, linesep, headers=False)
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken transfer encoding: keep the bytes as they came
        data = None
    if isinstance(data, bytes):
        return data
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def serialised(part: Message, linesep: str, *, headers: bool = True) -> bytes:
    """A parsed (sub)message back as bytes: raw header values as received, bodies as received.

    Used for embedded messages (message/rfc822) and report blocks, which the parser took apart."""
    out: list[str] = []
    _serialise(part, out, linesep, headers=headers, depth=0)
    return "".join(out).encode("utf-8", "surrogateescape")


def _serialise(part: Message, out: list[str], linesep: str, *, headers: bool, depth: int) -> None:
    if headers:
        out.extend(f"{name}: {value}{linesep}" for name, value in part.raw_items())
        out.append(linesep)
    payload = part.get_payload()
    if isinstance(payload, str):
        out.append(payload)
        return
    if not isinstance(payload, list) or depth > MAX_MIME_DEPTH * 4:
        return
    children = [child for child in payload if isinstance(child, Message)]
    boundary = part.get_boundary() if part.get_content_maintype() == "multipart" else None
    if boundary is None:
        for child in children:
            _serialise(child, out, linesep, headers=True, depth=depth + 1)
        return
    if part.preamble:
        out.append(part.preamble + linesep)
    for child in children:
        out.append(f"--{boundary}{linesep}")
        _serialise(child, out, linesep, headers=True, depth=depth + 1)
        out.append(linesep)
    out.append(f"--{boundary}--{linesep}")
    if part.epilogue:
        out.append(part.epilogue)
