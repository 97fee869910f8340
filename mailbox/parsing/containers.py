"""Attachments that wrap the message itself: winmail.dat (TNEF) and opaque-signed S/MIME (smime.p7m).

Each is opened into what it holds: its files become attachments of their own (each its own blob,
like any other), and its body becomes the message's body when the message has none of its own.

The container is then dropped when it was opened. Why not keep it too: the raw message is stored
byte for byte, so the original winmail.dat or signature is never lost (the "original message"
download has it), while listing it beside its contents doubles the attachment storage and shows the
user a file their system cannot open, the very complaint. A container that cannot be opened, or that
yields nothing we can show (a TNEF holding only an RTF body), is kept as the attachment it was; a
damaged TNEF (a failed checksum, a truncated stream) is kept beside what could be read from it.
An encrypted S/MIME part is kept: nothing in it is readable without the recipient's key.
"""

from dataclasses import dataclass

from mailbox.parsing import smime, tnef
from mailbox.parsing.mime import BodyReader, attachments, parse_tree, structure_of
from mailbox.parsing.results import ParsedAttachment

# An opened S/MIME entity may hold another container (a signed message forwarded as winmail.dat);
# deeper nesting is kept as it came.
MAX_CONTAINER_DEPTH = 3


@dataclass
class Contents:
    text: str
    html: str
    attachments: list[ParsedAttachment]
    damaged: bool = False

    @property
    def has_body(self) -> bool:
        return bool(self.text.strip() or self.html.strip())


def containers_opened(contents: Contents, linesep: str, repairs: list[str], depth: int = 0) -> Contents:
    """``contents`` with every winmail.dat and opaque-signed part replaced by what it holds.

    A message without such a part comes back as it went in, at the cost of one pass over its
    attachments' types. Notes what it could not open in ``repairs``."""
    if depth >= MAX_CONTAINER_DEPTH or not any(_is_container(part) for part in contents.attachments):
        return contents
    result = Contents(contents.text, contents.html, [])
    for part in contents.attachments:
        opened = _opened(part, linesep, repairs, depth) if _is_container(part) else None
        if opened is None or opened.damaged:
            result.attachments.append(part)
        if opened is None:
            continue
        if not result.has_body:
            result.text, result.html = opened.text, opened.html
        result.attachments.extend(opened.attachments)
    return result


def _is_container(part: ParsedAttachment) -> bool:
    return tnef.is_tnef(part) or smime.is_smime(part.content_type, part.filename)


def _opened(part: ParsedAttachment, linesep: str, repairs: list[str], depth: int) -> Contents | None:
    if tnef.is_tnef(part):
        found = tnef.tnef_contents(part.data)
        if found is None:
            repairs.append("tnef-undecodable")
            return None
        if found.damaged:
            repairs.append("tnef-damaged")
        return None if found.is_empty else Contents(found.text, found.html, found.attachments, found.damaged)
    entity = smime.signed_content(part.data)
    if entity is None:
        return None  # encrypted, detached or broken: the view says what it is
    return _entity_contents(entity, linesep, repairs, depth)


def _entity_contents(entity: bytes, linesep: str, repairs: list[str], depth: int) -> Contents:
    """Body and attachments of a MIME entity (the signed content), read as the message's own are."""
    found = structure_of(parse_tree(entity, repairs), repairs)
    text, html = BodyReader().bodies(found)
    inner = Contents(text, html, attachments(found, html, linesep))
    return containers_opened(inner, linesep, repairs, depth + 1)
