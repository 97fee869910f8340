"""Folding quoted parts of sanitised HTML into ``<details class="quoted">``.

Works on the sanitiser's own output, which is well-formed and canonical (lowercase tags, quoted
attributes, ``<`` escaped in text, no comments), so a tag scanner that counts nesting is exact
there. The result goes through the sanitiser again. Already folded quotes are left alone, so
folding is idempotent.
"""

import re

from mailbox.rendering.text import QUOTE_SUMMARY

_OPEN = '<details class="quoted"><summary>' + QUOTE_SUMMARY + "</summary>"
_START = re.compile(r'<div class="gmail_quote">|<blockquote[\s>]')


def quotes_fold(html: str) -> str:
    """Wrap each outermost Gmail quote block or ``<blockquote>`` not yet folded."""
    out, position = [], 0
    for match in _START.finditer(html):
        start = match.start()
        if start < position:
            continue  # inside a quote already handled
        tag = "div" if match.group(0).startswith("<div") else "blockquote"
        end = _element_end(html, start, tag)
        if end is None:
            continue
        if html[:start].endswith("</summary>"):
            out.append(html[position:end])  # folded before: keep it, and what it holds, as it is
        else:
            out += [html[position:start], _OPEN, html[start:end], "</details>"]
        position = end
    out.append(html[position:])
    return "".join(out)


def _element_end(html: str, start: int, tag: str) -> int | None:
    """Index just past the tag that closes the element opened at ``start``."""
    depth = 0
    for match in re.compile(rf"<(/?){tag}[\s>]").finditer(html, start):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return html.index(">", match.start()) + 1
    return None
