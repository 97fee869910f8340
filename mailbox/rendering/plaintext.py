"""HTML bodies as plain text, for quoting and forwarding a message that has no text part.

The browser's line structure is kept: block elements start new lines (paragraphs, headings,
quotes, lists and tables a blank line before and after), ``<br>`` breaks a line, table cells sit
side by side. Entities are decoded; scripts, styles and the title are dropped with their content.
Built on the standard library's tolerant ``html.parser``, so any input gives some text. The
markup is first reduced by ``nh3`` (html5ever, linear time) to the elements read here: whatever a
sender writes, ``html.parser`` then sees well-formed markup without comments or stray ``<``, the
inputs that make it slow (CVE-2025-6069).
"""

from html.parser import HTMLParser

import nh3

# Elements whose content is not visible text.
_HIDDEN = {"script", "style", "title", "template"}
# Elements that end a line before and after them.
_LINE_BLOCKS = {
    "address", "article", "aside", "dd", "div", "dt", "figcaption", "figure", "footer", "form",
    "header", "li", "main", "nav", "section", "tr",
}  # fmt: skip
# Elements set apart by a blank line, as a browser's margins set them apart.
_PARAGRAPH_BLOCKS = {
    "blockquote", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "ol", "p", "pre", "table", "ul",
}  # fmt: skip
_CELLS = {"td", "th"}
_READ = _LINE_BLOCKS | _PARAGRAPH_BLOCKS | _CELLS | {"br"}


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._breaks = 0  # newlines owed before the next text
        self._hidden = 0  # depth inside _HIDDEN elements
        self._pre = 0  # depth inside <pre>, where whitespace is kept

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        if self._hidden:
            return
        if tag == "br":
            # Each <br> is a line of its own: two in a row leave a blank line.
            self._breaks += 1
        elif tag in _CELLS:
            self._write(" ")
        else:
            self._block(tag)
        if tag == "pre":
            self._pre += 1
        elif tag == "li":
            self._write("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "pre" and not self._hidden:
            self._pre = max(0, self._pre - 1)
        if not self._hidden and tag not in _HIDDEN:
            self._block(tag)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self._write(data if self._pre else _collapse(data))

    def _block(self, tag: str) -> None:
        if tag in _PARAGRAPH_BLOCKS:
            self._breaks = max(self._breaks, 2)
        elif tag in _LINE_BLOCKS:
            self._breaks = max(self._breaks, 1)

    def _write(self, text: str) -> None:
        at_line_start = not self.pieces or self._breaks or self.pieces[-1][-1:].isspace()
        if at_line_start and not self._pre:
            text = text.lstrip(" ")
        if not text:
            return
        if self._breaks and self.pieces:
            self.pieces.append("\n" * self._breaks)
        self._breaks = 0
        self.pieces.append(text)


def _collapse(data: str) -> str:
    """Runs of whitespace (newlines included) as one space, as a browser shows them."""
    words = data.split()
    if not words:
        return " " if data else ""
    lead = " " if data[0].isspace() else ""
    trail = " " if data[-1].isspace() else ""
    return lead + " ".join(words) + trail


def html_to_text(markup: str) -> str:
    """The visible text of ``markup`` with its lines: no trailing spaces, no leading or trailing
    blank lines, never more than one blank line in a row."""
    collector = _TextCollector()
    collector.feed(nh3.clean(markup, tags=_READ, attributes={}, clean_content_tags=_HIDDEN, strip_comments=True))
    collector.close()
    lines = [line.rstrip() for line in "".join(collector.pieces).split("\n")]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip("\n")
