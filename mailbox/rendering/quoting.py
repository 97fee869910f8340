"""Folding quoted parts of sanitised HTML into ``<details class="quoted">``.

Works on the sanitiser's own output, which is well-formed and canonical (lowercase tags, quoted
attributes, ``<`` escaped in text, no comments), so a tag scanner that counts nesting is exact
there. The result goes through the sanitiser again. Already folded quotes are left alone, so
folding is idempotent.

Two kinds of quote. An element that holds the quote (``<blockquote>``: Apple Mail, Thunderbird and
most clients; Gmail's ``gmail_quote``; Yahoo's ``yahoo_quoted``) is folded with the attribution line
just before it (Thunderbird's ``moz-cite-prefix``, or any "On … wrote:"). Outlook quotes without
an element: a marker (``appendonsend``, ``divRplyFwdMsg``, or a rule or top-bordered block
followed by the "From: … Sent:" header) and then the original, to the end of the element holding
the marker. A message whose whole text would fold is left as it is.
"""

import html as html_lib
import re

from mailbox.rendering.text import QUOTE_SUMMARY, is_attribution

_FOLDED = '<details class="quoted">'
_OPEN = _FOLDED + "<summary>" + QUOTE_SUMMARY + "</summary>"
_START = re.compile(
    r"(?P<folded><details class=\"quoted\">)"
    r"|(?P<element><blockquote[\s>]|<div [^>]*class=\"(?:[^\"]* )?(?:gmail_quote|[\w-]*yahoo_quoted)[ \"])"
    r"|(?P<outlook><div [^>]*id=\"(?:appendonsend|divRplyFwdMsg)\"|<hr[\s>]|<div [^>]*style=\"[^\"]*border-top:)"
)
# Outlook's header of the quoted original, in the text after a rule or bordered block.
_OUTLOOK_HEADER = re.compile(
    r"\s*(?:From|Von|De)\s*:.{0,400}?\b(?:Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha)\s*:", re.IGNORECASE | re.DOTALL
)
_OUTLOOK_MARKER_IDS = ('id="appendonsend"', 'id="divRplyFwdMsg"')
_TAG = re.compile(r"<(/?)([a-z][a-z0-9]*)[^>]*>")
_VOID = frozenset({"br", "hr", "img", "wbr", "col"})
_SHEET = re.compile(r"^<style>[^<]*</style>")
_ATTRIBUTION_TEXT_MAX = 600


def quotes_fold(html: str) -> str:
    """Wrap each outermost quote not yet folded (see the module docstring)."""
    out: list[str] = []
    shown: list[str] = []  # what stays unfolded, to check that something does
    position = 0
    for match in _START.finditer(html):
        start = match.start()
        if start < position:
            continue  # inside a quote already handled
        span = _quote_span(html, match, position)
        if span is None:
            continue
        start, end = span
        shown.append(html[position:start])
        if match.group("folded"):
            out.append(html[position:end])  # folded before: keep it, and what it holds, as it is
        else:
            out += [html[position:start], _OPEN, html[start:end], "</details>"]
        position = end
    if not out:
        return html
    shown.append(html[position:])
    if not _shows_something("".join(shown)):
        return html
    out.append(html[position:])
    return "".join(out)


def _quote_span(html: str, match: re.Match, floor: int) -> tuple[int, int] | None:
    """Where the quote that ``match`` starts begins and ends; ``None`` if it is no quote."""
    start = match.start()
    if match.group("folded"):
        end = _element_end(html, start, "details")
        return None if end is None else (start, end)
    if match.group("element"):
        tag = "div" if match.group(0).startswith("<div") else "blockquote"
        end = _element_end(html, start, tag)
        return None if end is None else (_attribution_start(html, floor, start), end)
    opening = html[start : html.index(">", start) + 1]
    if not any(marker in opening for marker in _OUTLOOK_MARKER_IDS) and not _OUTLOOK_HEADER.match(
        _visible(html[start : start + 3000])
    ):
        return None
    marker_end = start + len(opening) if opening.startswith("<hr") else _element_end(html, start, "div")
    end = _parent_end(html, start)
    # Outlook wraps its header block in a div of its own: the original follows the wrapper.
    for _ in range(3):
        if marker_end is None or end >= len(html) or html[marker_end:end].strip():
            break
        wrapper = _opening_of(html, floor, end)
        if wrapper is None:
            break
        start, marker_end = wrapper, html.index(">", end) + 1
        end = _parent_end(html, marker_end)
    return start, end


def _element_end(html: str, start: int, tag: str) -> int | None:
    """Index just past the tag that closes the element opened at ``start``."""
    depth = 0
    for match in re.compile(rf"<(/?){tag}[\s>]").finditer(html, start):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return html.index(">", match.start()) + 1
    return None


def _parent_end(html: str, start: int) -> int:
    """Index of the tag closing the element that holds ``start`` (the end, at the top level)."""
    depth = 0
    for match in _TAG.finditer(html, start):
        if match.group(2) in _VOID:
            continue
        if match.group(1):
            if depth == 0:
                return match.start()
            depth -= 1
        else:
            depth += 1
    return len(html)


def _attribution_start(html: str, floor: int, start: int) -> int:
    """Where the attribution element just before ``start`` (past ``floor``; line breaks between
    allowed) begins, if there is one; else ``start``."""
    before = html[floor:start]
    while True:
        trimmed = before.rstrip()
        if not trimmed.endswith("<br>"):
            break
        before = trimmed[:-4]
    for tag in ("div", "p"):
        if not trimmed.endswith(f"</{tag}>"):
            continue
        candidate = _opening_of(html, floor, floor + len(trimmed) - len(f"</{tag}>"))
        if candidate is None:
            return start
        element = html[candidate : floor + len(trimmed)]
        opening = element[: element.index(">")]
        if 'class="moz-cite-prefix"' in opening or (
            len(element) <= _ATTRIBUTION_TEXT_MAX and is_attribution(" ".join(_visible(element).split()))
        ):
            return candidate
    return start


def _opening_of(html: str, floor: int, closing: int) -> int | None:
    """Where the element closed by the tag at ``closing`` opens (past ``floor``), if found."""
    name = _TAG.match(html, closing).group(2)
    closed_at = html.index(">", closing) + 1
    candidate = closing
    for _ in range(8):  # the nearest openings of that tag; nested ones end elsewhere
        candidate = html.rfind(f"<{name}", floor, candidate)
        if candidate < 0:
            return None
        if html[candidate + len(name) + 1] in " >" and _element_end(html, candidate, name) == closed_at:
            return candidate
    return None


def _visible(html: str) -> str:
    return html_lib.unescape(_TAG.sub(" ", _SHEET.sub("", html)))


def _shows_something(html: str) -> bool:
    return "<img" in html or bool(_visible(html).strip())
