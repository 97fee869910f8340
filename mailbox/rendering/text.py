"""Plain-text bodies as HTML: escaped first, then links made clickable, then quotes folded."""

import html
import re

# A web or mail link in text; trailing punctuation that usually ends a sentence is left out.
_LINK = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+|\bmailto:[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
_ATTRIBUTION = re.compile(r"^\s*(On\b.{0,300}\bwrote:|-{2,}\s*Original Message\s*-{2,})\s*$", re.IGNORECASE)
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


def text_to_html(text: str) -> str:
    """A plain-text body as HTML: runs of ``>`` lines, with the "On … wrote:" line before them,
    folded into ``<details>``; the rest kept as preformatted, wrapping text."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[tuple[bool, list[str]]] = []
    for index, line in enumerate(lines):
        quoted = line.startswith(">") or (_ATTRIBUTION.match(line) is not None and _next_is_quote(lines, index))
        if blocks and blocks[-1][0] == quoted:
            blocks[-1][1].append(line)
        else:
            blocks.append((quoted, [line]))
    out = []
    for quoted, block in blocks:
        body = f'<div style="white-space:pre-wrap">{linkify(chr(10).join(block))}</div>'
        out.append(f'<details class="quoted"><summary>{QUOTE_SUMMARY}</summary>{body}</details>' if quoted else body)
    return "".join(out)


def _next_is_quote(lines: list[str], index: int) -> bool:
    """The attribution line is followed (after blank lines) by quoted lines."""
    for line in lines[index + 1 :]:
        if line.strip():
            return line.startswith(">")
    return False
