"""A message body, ready for the sandboxed body document."""

import re
from dataclasses import dataclass

from mailbox.rendering.html import UrlPolicy, html_clean
from mailbox.rendering.quoting import quotes_fold
from mailbox.rendering.text import text_to_html

# Remote resources other than <img src> that the sanitiser drops without counting them.
_REMOTE_HINT = re.compile(r"url\s*\(|\bbackground\s*=|\bsrcset\s*=|@import|<link\b", re.IGNORECASE)


@dataclass(frozen=True)
class RenderedBody:
    html: str
    remote_content_blocked: bool


def html_render(html: str, *, policy: UrlPolicy) -> str:
    """Sanitise, fold quotes, sanitise again: nothing leaves here that the sanitiser did not see
    last. Idempotent for a given policy."""
    return html_clean(quotes_fold(html_clean(html, policy=policy)), policy=policy)


def render_body(*, text: str, html: str, policy: UrlPolicy) -> RenderedBody:
    """The safe HTML of a body: the HTML part when there is one, else the escaped, linkified text."""
    source = html if html.strip() else text_to_html(text)
    rendered = html_render(source, policy=policy)
    blocked = policy.proxy_url is None and (policy.remote_blocked > 0 or bool(html and _REMOTE_HINT.search(html)))
    return RenderedBody(html=rendered, remote_content_blocked=blocked)
