"""How tall a rendered body is, roughly, in lines: the conversation page sizes each body's iframe
with it, since the page cannot measure the document (the sandbox keeps it out) and the document
runs no script to say. Folded quotes count as their one summary line; long lines wrap."""

import html as html_lib
import math
import re

from mailbox.rendering.quoting import element_end

COLUMNS = 80  # characters a line holds, about, at desktop width
MAX_LINES = 400  # past this the iframe is as tall as it gets anyway
_FOLDED = '<details class="quoted">'
_SHEET = re.compile(r"^<style>[^<]*</style>")
# Tags that end a line in an HTML body (the others flow with the text).
_LINE_END = re.compile(r"<br>|<hr[^>]*>|</(?:p|div|li|tr|h[1-6]|blockquote|pre|table|dt|dd|summary)>")
_TAG = re.compile(r"<[^>]*>")
_IMAGE = re.compile(r"<img\b[^>]*>")
_IMAGE_HEIGHT = re.compile(r'\bheight="(\d{1,5})')
_LINE_PIXELS = 22
_IMAGE_LINES = 6  # an image whose height the message does not say
_HTML_SPACING = 1.5  # paragraph margins, headings and cell padding: HTML takes more room than its text


def body_lines(html: str, *, preformatted: bool) -> int:
    """The lines the sanitised, folded ``html`` takes; ``preformatted`` for a plain-text body,
    whose line breaks are its own (in HTML, only tags break lines)."""
    shown, folds = _unfolded(_SHEET.sub("", html))
    text = shown if preformatted else _LINE_END.sub("\n", shown)
    lines = 0
    for line in html_lib.unescape(_TAG.sub("", text)).split("\n"):
        length = len(line) if preformatted else len(" ".join(line.split()))
        lines += max(1, math.ceil(length / COLUMNS)) if length or preformatted else 0
    if not preformatted:
        lines = math.ceil(lines * _HTML_SPACING)
    lines += folds + sum(_image_lines(tag) for tag in _IMAGE.findall(shown))
    return min(max(lines, 1), MAX_LINES)


def _unfolded(html: str) -> tuple[str, int]:
    """``html`` without its folded quotes, and how many there were."""
    kept, folds, position = [], 0, 0
    while (start := html.find(_FOLDED, position)) >= 0:
        end = element_end(html, start, "details")
        if end is None:
            break
        kept.append(html[position:start])
        folds, position = folds + 1, end
    kept.append(html[position:])
    return "".join(kept), folds


def _image_lines(tag: str) -> int:
    height = _IMAGE_HEIGHT.search(tag)
    return math.ceil(int(height.group(1)) / _LINE_PIXELS) if height else _IMAGE_LINES
