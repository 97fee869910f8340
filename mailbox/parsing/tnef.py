"""winmail.dat (TNEF, MS-OXTNEF): the attachments and body Outlook locked inside it, decoded by ``tnefparse``.

Outlook sends its "rich text" mail as one ``application/ms-tnef`` part that no other client opens.
Decoding is defensive: a TNEF that ``tnefparse`` cannot read gives ``None`` and the caller keeps the
part as it came. The compressed-RTF body is not converted (that needs an RTF reader): the plain
and HTML bodies, when Outlook put them in, are used.
"""

import logging
import mimetypes
import re
from dataclasses import dataclass, field

from tnefparse import TNEF
from tnefparse.properties import MAPI_ATTACH_CONTENT_ID, MAPI_ATTACH_MIME_TAG
from tnefparse.tnef import TNEFAttachment

from mailbox.parsing.charsets import decode_text
from mailbox.parsing.headers import storable
from mailbox.parsing.results import ParsedAttachment

TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_MEDIA_TYPE = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]{1,127}/[a-z0-9!#$%&'*+.^_`|~-]{1,127}")
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
        html = _text(decoded.htmlbody)
        return TnefContents(
            text=_text(decoded.body),
            html=html,
            attachments=[_attachment(item, html) for item in decoded.attachments if item.data],
            damaged=not all(item.good_checksum for item in decoded.objects),
        )
    except Exception:  # noqa: BLE001 - tnefparse raises anything on a broken stream; the caller keeps it
        return None


def _attachment(item: TNEFAttachment, html: str) -> ParsedAttachment:
    """A file, typed as Outlook recorded it (else by its name), and inline when the HTML body
    shows it by its Content-ID."""
    name = storable(str(item.long_filename() or "")).strip().replace("\\", "/").rsplit("/", 1)[-1][:255]
    declared = _MEDIA_TYPE.fullmatch(_mapi_text(item, MAPI_ATTACH_MIME_TAG).lower())
    content_type = declared.group() if declared else mimetypes.guess_type(name, strict=False)[0]
    content_id = _mapi_text(item, MAPI_ATTACH_CONTENT_ID).strip("<>")[:998]
    return ParsedAttachment(
        filename=name,
        content_type=content_type or "application/octet-stream",
        content_id=content_id,
        is_inline=bool(content_id) and f"cid:{content_id}".lower() in html.lower(),
        data=bytes(item.data),
    )


def _mapi_text(item: TNEFAttachment, tag: int) -> str:
    for attribute in item.mapi_attrs:
        if attribute.name == tag:
            value = attribute.data
            value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            return storable(value).strip()
    return ""


def _text(value: str | bytes | None) -> str:
    """A body property: tnefparse gives text when Outlook named the code page, bytes otherwise."""
    if not value:
        return ""
    text = value if isinstance(value, str) else decode_text(value, None, "windows-1252")
    return storable(text.replace("\r\n", "\n").rstrip("\x00"))
