"""What the parser hands to delivery: plain dataclasses, already decoded and bounded for the database."""

import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import datetime

from mailbox.rendering.text import unquoted_text

SNIPPET_LENGTH = 200
# The snippet needs the first words only: look at a bounded prefix, so a 20 MB body costs no more
# than a short one.
_SNIPPET_SOURCE = 100_000
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")
_SPACE = re.compile(r"\s+")
# Where a quote starts in a sender's HTML: a blockquote, Gmail's, Yahoo's, Thunderbird's and Outlook's
# markers (Outlook for Windows: the grey rule above the original's header block).
_HTML_QUOTE = re.compile(
    r"<blockquote\b|<div\b[^<>]{0,500}?(?:gmail_quote|yahoo_quoted|moz-cite-prefix|divRplyFwdMsg|appendonsend"
    r"|border:none;\s*border-top:solid #(?:E1E1E1|B5C4DF))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Address:
    name: str
    address: str


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    content_id: str
    # Shown inside the HTML body (a cid: image), not listed as a separate attachment.
    is_inline: bool
    data: bytes


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's block of a delivery status notification (RFC 3464)."""

    recipient: str  # Final-Recipient (else Original-Recipient), lowercase address
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # enhanced status code, e.g. "5.1.1"
    diagnostic: str = ""  # Diagnostic-Code, e.g. "smtp; 550 5.1.1 user unknown"
    remote_mta: str = ""


@dataclass(frozen=True)
class MessageReport:
    """A report about a message we may have sent: a bounce (DSN), read receipt (MDN) or complaint (ARF).

    ``original_message_id`` links it to the message it reports on, so the outbound side can find
    the delivery. ``heuristic`` marks a non-standard bounce (plain text from a mailer daemon) whose
    fields were read from its text rather than from a machine-readable part.
    """

    report_type: str  # "delivery-status", "disposition-notification" or "feedback-report"
    original_message_id: str = ""
    recipients: tuple[RecipientStatus, ...] = ()
    reporting_mta: str = ""
    disposition: str = ""  # MDN: e.g. "manual-action/MDN-sent-manually; displayed"
    feedback_type: str = ""  # ARF: e.g. "abuse"
    heuristic: bool = False


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
    # True when message_id was made from the content hash (none given, or several that disagree).
    message_id_synthesised: bool = False
    # A bounce, read receipt or complaint: what it reports on. None for ordinary mail.
    report: MessageReport | None = None
    # What the parser had to repair or leave out (e.g. "boundary-recovered", "depth-limit"), for staff.
    repairs: list[str] = field(default_factory=list)

    @property
    def sender(self) -> Address:
        found = self.addresses.get("from") or self.addresses.get("sender") or [Address("", "")]
        return found[0]

    @property
    def snippet(self) -> str:
        """The first words of the new text: quoted lines and their attribution left out."""
        if self.text.strip():
            source = unquoted_text(self.text[:_SNIPPET_SOURCE])
        else:
            source = html_text(html_before_quote(self.html[:_SNIPPET_SOURCE]))
        return _SPACE.sub(" ", html_lib.unescape(source)).strip()[:SNIPPET_LENGTH]


def html_before_quote(html: str) -> str:
    """The HTML before its first quote when some text shows there, else all of it (``html`` as the
    sender wrote it: the snippet and ``rendering.height`` read it before any sanitising)."""
    match = _HTML_QUOTE.search(html)
    if match is None or not html_lib.unescape(html_text(html[: match.start()])).strip():
        return html
    return html[: match.start()]


def html_text(html: str) -> str:
    """Visible text of an HTML prefix: scripts and styles dropped, tags turned into spaces. Linear time."""
    kept: list[str] = []
    position = 0
    while (opening := _SCRIPT_OR_STYLE.search(html, position)) is not None:
        kept.append(html[position : opening.start()])
        closing = re.compile(rf"</{opening.group(1)}\s*>", re.IGNORECASE).search(html, opening.end())
        if closing is None:
            position = len(html)
            break
        position = closing.end()
    kept.append(html[position:])
    return _TAG.sub(" ", " ".join(kept))
