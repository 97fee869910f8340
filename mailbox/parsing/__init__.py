"""Raw RFC 5322 bytes → the fields Mailsite stores. Defensive: never raises on bad mail.

Real mail carries unknown charsets, malformed address headers and broken MIME; every header and
body access expects trouble and falls back instead. Modules: ``charsets`` (decoding with aliases and
fallbacks), ``headers`` (the stored headers, decoded), ``mime`` (body and attachments), ``reports``
(bounces, read receipts, complaints), ``containers`` (winmail.dat and opaque S/MIME opened, with
``tnef`` and ``smime``), ``calendar`` (an invitation's event, for the view), ``message`` (the whole).
"""

from mailbox.parsing.message import parse_message
from mailbox.parsing.mime import MAX_MIME_DEPTH, MAX_PARTS
from mailbox.parsing.results import Address, MessageReport, ParsedAttachment, ParsedMessage, RecipientStatus

__all__ = [
    "MAX_MIME_DEPTH",
    "MAX_PARTS",
    "Address",
    "MessageReport",
    "ParsedAttachment",
    "ParsedMessage",
    "RecipientStatus",
    "parse_message",
]
