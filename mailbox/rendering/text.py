"""Plain-text bodies as HTML: escaped first, then links made clickable, then quotes folded."""

import html
import re

# A web or mail link in text; trailing punctuation that usually ends a sentence is left out.
_LINK = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+|\bmailto:[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
# The line a client writes above the text it quotes: English, German, French and Spanish (Gmail,
# Apple Mail, Thunderbird), or Outlook's separator. French puts a (no-break) space before the colon.
_ATTRIBUTION = re.compile(
    r"\s*(?:On\b.{0,300}\bwrote\s*:|Am\b.{0,300}\bschrieb\b.{0,300}:|Le\b.{0,300}\ba\s+écrit\s*:"
    r"|El\b.{0,300}\bescribió\s*:|-{2,}\s*Original Message\s*-{2,})\s*",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(r"\s*(?:(?:On|Am|Le|El)\b|-{2,})", re.IGNORECASE)
_ATTRIBUTION_LINES = 3  # clients wrap a long one ("On …, Name <\naddr> wrote:")
# Outlook quotes without ">": a rule, then the original's header block (From:, then Sent: or Date:),
# then the original as it was, to the end.
_RULE = re.compile(r"\s*(?:-{3,}\s*Original Message\s*-{3,}|_{20,})\s*", re.IGNORECASE)
_HEADER_FROM = re.compile(r"\s*(?:From|Von|De)\s*:", re.IGNORECASE)
_HEADER_DATE = re.compile(r"\s*(?:Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha)\s*:", re.IGNORECASE)
QUOTE_SUMMARY = "Show quoted text"


def linkify(text: str) -> str:
    """``text`` HTML-escaped, with its http(s)/www/mailto links as ``<a>`` (the sanitiser adds the
    new-tab target and rel)."""
    parts, last = [], 0
    for match in _LINK.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        start, end = match.start(), match.start() + len(url)
        href = url if not url.lower().startswith("www.") else f"https://{url}"
        parts += [html.escape(text[last:start]), f'<a href="{html.escape(href)}">{html.escape(url)}</a>']
        last = end
    parts.append(html.escape(text[last:]))
    return "".join(parts)


def is_attribution(line: str) -> bool:
    """``line`` is a quote's attribution ("On …, Name wrote:" and its translations)."""
    return _ATTRIBUTION.fullmatch(line) is not None


def quoted_lines(lines: list[str]) -> list[bool]:
    """Which of ``lines`` are quoted: ``>`` lines, the attribution above them (with the blank lines
    between), and Outlook's original below its rule and header block. Never all of the text that
    shows: a message that is nothing but a quote is shown whole."""
    marks = [line.startswith(">") for line in lines]
    index = 0
    while index < len(lines):
        if _original_starts(lines, index):
            marks[index:] = [True] * (len(lines) - index)
            break
        span = _attribution_span(lines, index)
        if span:
            marks[index : index + span] = [True] * span
        index += span or 1
    if all(marks[i] or not line.strip() for i, line in enumerate(lines)):
        return [False] * len(lines)
    return marks


def unquoted_text(text: str) -> str:
    """``text`` without its quoted lines (see ``quoted_lines``)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line for line, quoted in zip(lines, quoted_lines(lines), strict=True) if not quoted)


def text_to_html(text: str) -> str:
    """A plain-text body as HTML: its quoted lines (``quoted_lines``) folded into ``<details>``;
    the rest kept as preformatted, wrapping text."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[tuple[bool, list[str]]] = []
    for line, quoted in zip(lines, quoted_lines(lines), strict=True):
        if blocks and blocks[-1][0] == quoted:
            blocks[-1][1].append(line)
        else:
            blocks.append((quoted, [line]))
    out = []
    for quoted, block in blocks:
        body = f'<div style="white-space:pre-wrap">{linkify(chr(10).join(block))}</div>'
        out.append(f'<details class="quoted"><summary>{QUOTE_SUMMARY}</summary>{body}</details>' if quoted else body)
    return "".join(out)


def _attribution_span(lines: list[str], index: int) -> int:
    """How many lines, from ``index``, an attribution and the blank lines after it take, when
    quoted lines follow them; 0 if none starts there."""
    if not _ATTRIBUTION_START.match(lines[index]):
        return 0
    for count in range(1, min(_ATTRIBUTION_LINES, len(lines) - index) + 1):
        last = lines[index + count - 1]
        if count > 1 and (not last.strip() or _ATTRIBUTION_START.match(last)):
            return 0  # a wrapped attribution has no blank line, and one starting below is its own
        if is_attribution(" ".join(lines[index : index + count])):
            following = index + count
            while following < len(lines) and not lines[following].strip():
                following += 1
            return following - index if following < len(lines) and lines[following].startswith(">") else 0
    return 0


def _original_starts(lines: list[str], index: int) -> bool:
    """Outlook's rule at ``index``, followed by the quoted original's header block."""
    if not _RULE.fullmatch(lines[index]):
        return False
    header = [line for line in lines[index + 1 : index + 12] if line.strip()][:5]
    return bool(header) and _HEADER_FROM.match(header[0]) is not None and any(_HEADER_DATE.match(h) for h in header)
