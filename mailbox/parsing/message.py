"""Raw RFC 5322 bytes → the fields Mailsite stores, in one pass over the MIME tree."""

import hashlib
from collections.abc import Iterable
from datetime import datetime

from mailbox.parsing import headers as h
from mailbox.parsing.containers import Contents, containers_opened
from mailbox.parsing.mime import BodyReader, attachments, declared_charset, parse_tree, structure_of
from mailbox.parsing.reports import report_of
from mailbox.parsing.results import ParsedMessage

_IDENTIFYING_HEADERS = ("from", "sender", "to", "subject", "date", "message-id")
_ADDRESS_HEADERS = {
    "from": ("from",),
    "sender": ("sender",),
    "reply_to": ("reply-to",),
    "to": ("to",),
    "cc": ("cc",),
    "bcc": ("bcc",),
    # Where the receiving systems delivered it: how a Bcc copy shows whom it was for.
    "delivered_to": ("delivered-to", "x-original-to", "envelope-to"),
}


def parse_message(raw: bytes, *, received_at: datetime, authserv_ids: Iterable[str] = ()) -> ParsedMessage:
    """Parse ``raw`` defensively: never raises on bad mail.

    ``authserv_ids`` names the hosts whose Authentication-Results we trust (ours and our ESP's);
    other such headers are ignored.

    A missing Message-ID (or several that disagree) is synthesised from the content hash, so the
    same bytes always get the same id; a missing or absurd Date falls back to ``received_at``.
    """
    repairs: list[str] = []
    root = parse_tree(raw, repairs)
    linesep = "\r\n" if b"\r\n" in raw[:4096] else "\n"
    found = structure_of(root, repairs)
    index = h.HeaderIndex(root, declared_charset(root, found))
    message_id = h.own_message_id(index.all("message-id"))
    text, html = BodyReader().bodies(found)
    # winmail.dat and opaque-signed S/MIME hold the real body and files: open them (containers.py).
    contents = containers_opened(Contents(text, html, attachments(found, html, linesep)), linesep, repairs)
    return ParsedMessage(
        message_id=message_id or f"{hashlib.sha256(raw).hexdigest()[:40]}@mailsite.invalid",
        message_id_synthesised=not message_id,
        in_reply_to=(h.message_ids(index.first("in-reply-to")) or [""])[-1],
        references=h.references(" ".join(index.all("references"))),
        subject=index.text("subject"),
        date=h.date(index.first("date"), received_at),
        list_id=h.list_id(index.first("list-id")),
        authentication=h.authentication(
            index.all("authentication-results"), frozenset(i.lower() for i in authserv_ids)
        ),
        list_unsubscribe=index.text("list-unsubscribe"),
        is_malformed=not any(index.first(name).strip() for name in _IDENTIFYING_HEADERS),
        size=len(raw),
        addresses={role: index.addresses(names) for role, names in _ADDRESS_HEADERS.items()},
        text=contents.text,
        html=contents.html,
        attachments=contents.attachments,
        report=report_of(found, index, text),
        repairs=repairs,
    )
