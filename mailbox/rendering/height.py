"""How tall a body is, roughly, in lines: the conversation page sizes each body's iframe with it,
since the page cannot measure the document (the sandbox keeps it out) and the document runs no
script to say. Read from the body as the sender wrote it, without rendering it (sanitising costs
far more than this, and delivery measures every message): quoted text counts as the one summary
line it folds into; long lines wrap."""

import html as html_lib
import math
import re

from mailbox.parsing.results import html_before_quote, html_text
from mailbox.rendering.text import quoted_lines

COLUMNS = 80  # characters a line holds, about, at desktop width
MAX_LINES = 400  # past this the iframe is as tall as it gets anyway
_MEASURED_CHARS = 200_000  # a longer body is taller than that
# Tags that end a line in an HTML body (the others flow with the text).
_LINE_END = re.compile(
    r"<(?:br|hr)\b[^<>]{0,500}>|</(?:p|div|li|tr|h[1-6]|blockquote|pre|table|dt|dd)\s*>", re.IGNORECASE
)
_IMAGE = re.compile(r"<img\b[^<>]{0,2000}>", re.IGNORECASE)
_IMAGE_HEIGHT = re.compile(r"\bheight\s*=\s*[\"']?(\d{1,5})", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_LINE_PIXELS = 22
_IMAGE_LINES = 6  # an image whose height the message does not say
_HTML_SPACING = 1.5  # paragraph margins, headings and cell padding: HTML takes more room than its text


def body_lines_estimate(*, text: str, html: str) -> int:
    """The lines the body takes in the viewer: its HTML part when there is one, else its text."""
    lines = _html_lines(html[:_MEASURED_CHARS]) if html.strip() else _text_lines(text[:_MEASURED_CHARS])
    return min(max(lines, 1), MAX_LINES)


def _text_lines(text: str) -> int:
    lines = text.rstrip().replace("\r\n", "\n").replace("\r", "\n").split("\n")
    count, in_quote = 0, False
    for line, quoted in zip(lines, quoted_lines(lines), strict=True):
        count += (not in_quote) if quoted else max(1, math.ceil(len(line) / COLUMNS))
        in_quote = quoted
    return count


def _html_lines(html: str) -> int:
    shown = html_before_quote(html)
    folds = 1 if len(shown) < len(html) else 0
    text = html_lib.unescape(html_text(_LINE_END.sub("\n", _SPACE.sub(" ", shown))))
    lines = sum(math.ceil(len(line.strip()) / COLUMNS) for line in text.split("\n"))
    images = sum(_image_lines(tag) for tag in _IMAGE.findall(shown))
    return math.ceil(lines * _HTML_SPACING) + images + folds


def _image_lines(tag: str) -> int:
    height = _IMAGE_HEIGHT.search(tag)
    return math.ceil(int(height.group(1)) / _LINE_PIXELS) if height else _IMAGE_LINES
