"""winmail.dat (TNEF, MS-OXTNEF): the attachments and body Outlook locked inside it, decoded by ``tnefparse``.

Outlook sends its "rich text" mail as one ``application/ms-tnef`` part that no other client opens.
Decoding is defensive: a TNEF that ``tnefparse`` cannot read gives ``None`` and the caller keeps the
part as it came. The compressed-RTF body is not converted (that needs an RTF reader): the plain
and HTML bodies, when Outlook put them in, are used.
"""

import logging
import mimetypes
from dataclasses import dataclass, field

from tnefparse import TNEF

from mailbox.parsing.charsets import decode_text
from mailbox.parsing.headers import storable
from mailbox.parsing.results import ParsedAttachment

TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_SIGNATURE = b"\x78\x9f\x3e\x22"  # 0x223E9F78, little-endian: every TNEF stream starts with it

# tnefparse logs every attribute it does not know at WARNING; a sender's odd Outlook is not our problem.
logging.getLogger("tnefparse").setLevel(logging.ERROR)


@dataclass
class TnefContents:
    text: str = ""
    html: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    # A checksum failed or the stream ended inside an attribute: what was read may be incomplete.
    damaged: bool = False

    @property
    def is_empty(self) -> bool:
        return not (self.text.strip() or self.html.strip() or self.attachments)


def is_tnef(part: ParsedAttachment) -> bool:
    """A TNEF part, by type or by Outlook's file name (some relays relabel it octet-stream)."""
    named = part.filename.lower() in ("winmail.dat", "win.dat")
    return (part.content_type in TNEF_TYPES or named) and part.data.startswith(_SIGNATURE)


def tnef_contents(data: bytes) -> TnefContents | None:
    """The files and bodies inside a TNEF stream; ``None`` when it cannot be decoded."""
    try:
        decoded = TNEF(data, do_checksum=True)
        return TnefContents(
            text=_text(decoded.body),
            html=_text(decoded.htmlbody),
            attachments=[_attachment(item) for item in decoded.attachments if item.data],
            damaged=not all(item.good_checksum for item in decoded.objects),
        )
    except Exception:  # noqa: BLE001 - tnefparse raises anything on a broken stream; the caller keeps it
        return None


def _attachment(item: object) -> ParsedAttachment:
    name = storable(str(item.long_filename() or "")).strip().replace("\\", "/").rsplit("/", 1)[-1][:255]
    content_type = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    return ParsedAttachment(
        filename=name, content_type=content_type, content_id="", is_inline=False, data=bytes(item.data)
    )


def _text(value: str | bytes | None) -> str:
    """A body property: tnefparse gives text when Outlook named the code page, bytes otherwise."""
    if not value:
        return ""
    text = value if isinstance(value, str) else decode_text(value, None, "windows-1252")
    return storable(text.replace("\r\n", "\n").rstrip("\x00"))
