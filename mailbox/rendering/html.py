"""The HTML sanitiser for message bodies: nh3 (ammonia) with an allow-list fit for email.

Two passes. The first sanitises and rewrites what must change (``cid:`` images to our route,
remote images blocked or sent through our proxy, styles through the CSS allow-list, links to a
new tab); ammonia does not re-check what a rewrite returns, so the second pass sanitises the result
again with a filter that only validates. Every rewrite yields something the rewrite keeps as is,
so the whole of ``html_clean`` is idempotent: ``html_clean(html_clean(x)) == html_clean(x)``.

No scripts, forms, SVG, MathML, ``<link>``, frames, objects or event handlers survive: they are
not on the allow-list (an allow-list, never a list of known attacks). ``<style>`` elements are
dropped by both passes; their text, read as the browser would parse the document, goes through
the style-sheet allow-list (css.py) and comes back as one ``<style>`` element at the start, whose
text holds no ``<`` and so cannot close it. Class and id attributes stay, for the sheet's selectors.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import nh3

from mailbox.rendering.css import style_clean, stylesheets_clean

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "caption", "center", "cite",
        "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "font",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre",
        "q", "s", "samp", "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody",
        "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip
# Removed with their content: what would otherwise leave code or hidden text as visible noise.
DROPPED_WITH_CONTENT = frozenset({"script", "style", "title", "head", "noscript", "template", "textarea", "select"})
_CELL = {"align", "valign", "bgcolor", "width", "height", "colspan", "rowspan", "nowrap", "scope", "abbr"}
ALLOWED_ATTRIBUTES = {
    "*": {"style", "dir", "lang", "title", "align", "class", "id"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height", "border", "hspace", "vspace"},
    "table": {"width", "height", "border", "cellpadding", "cellspacing", "bgcolor", "summary", "frame", "rules"},
    "tr": {"valign", "bgcolor", "height"},
    "td": _CELL,
    "th": _CELL,
    "col": {"span", "width", "valign"},
    "colgroup": {"span", "width", "valign"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value", "type"},
    "hr": {"width", "size", "noshade", "color"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "details": {"open"},
    "time": {"datetime"},
    "pre": {"width"},
}
LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|webp);base64,[A-Za-z0-9+/=\s]+$", re.IGNORECASE)
_REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
# The extractor writes <style> elements with their text as is (raw text in HTML) and escapes all
# other text, so this finds exactly the elements' texts.
_STYLE_TEXT = re.compile(r"<style>(.*?)</style>", re.DOTALL)
_STYLE_EXTRACTOR = nh3.Cleaner(
    tags={"style"},
    clean_content_tags=set(DROPPED_WITH_CONTENT - {"style"}),
    attributes={},
    strip_comments=True,
    link_rel=None,
)


@dataclass
class UrlPolicy:
    """How image URLs of one message are rewritten, and what the rewrite found.

    ``cid_url(content_id)`` gives our route for an inline part (``None`` if the message has no such
    part); ``proxy_url(url)`` our proxy's signed URL for a remote image, or ``None`` while remote
    images are blocked. ``own_prefixes`` are the relative URLs our rewrites produce.
    """

    cid_url: Callable[[str], str | None]
    proxy_url: Callable[[str], str] | None
    own_prefixes: tuple[str, ...]
    remote_blocked: int = field(default=0)

    def is_own(self, url: str) -> bool:
        return url.startswith(self.own_prefixes) and "\\" not in url and not url.startswith("//")


def html_clean(html: str, *, policy: UrlPolicy) -> str:
    """Sanitise ``html`` for display inside the sandboxed body document; see the module docstring."""
    rewritten = _cleaner(policy, _rewrite_filter(policy), schemes=LINK_SCHEMES | {"cid", "data"}).clean(html)
    body = _cleaner(policy, _validate_filter(policy), schemes=LINK_SCHEMES | {"data"}).clean(rewritten)
    sheet = _style_sheet(html)
    return f"<style>{sheet}</style>{body}" if sheet else body


def _style_sheet(html: str) -> str:
    """The filtered text of the document's ``<style>`` elements, as one sheet."""
    if "<style" not in html.lower():
        return ""
    return stylesheets_clean(_STYLE_TEXT.findall(_STYLE_EXTRACTOR.clean(html)))


def _cleaner(policy: UrlPolicy, attribute_filter: Callable, *, schemes: frozenset[str]) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(schemes),
        url_relative=lambda url: url if policy.is_own(url) else None,
    )


def _rewrite_filter(policy: UrlPolicy) -> Callable[[str, str, str], str | None]:
    def rewrite(tag: str, attribute: str, value: str) -> str | None:
        if attribute == "style":
            return style_clean(value) or None
        if tag == "img" and attribute == "src":
            return _image_src_rewrite(policy, value)
        return _validate(policy, tag, attribute, value)

    return rewrite


def _image_src_rewrite(policy: UrlPolicy, src: str) -> str | None:
    if src[:4].lower() == "cid:":
        return policy.cid_url(src[4:].strip().strip("<>"))
    if _REMOTE.match(src):
        if policy.proxy_url is None:
            policy.remote_blocked += 1
            return None
        return policy.proxy_url(src.strip())
    return _validate(policy, "img", "src", src)


def _validate_filter(policy: UrlPolicy) -> Callable[[str, str, str], str | None]:
    def validate(tag: str, attribute: str, value: str) -> str | None:
        if attribute == "style":
            return style_clean(value) or None
        return _validate(policy, tag, attribute, value)

    return validate


def _validate(policy: UrlPolicy, tag: str, attribute: str, value: str) -> str | None:
    """Keep only values that are safe as they stand: image sources are ours or inline raster data,
    links are web, mail or phone links (or ours)."""
    if tag == "img" and attribute == "src":
        return value if policy.is_own(value) or _DATA_IMAGE.match(value) else None
    if attribute in {"href", "cite"}:
        scheme = value.partition(":")[0].strip().lower() if ":" in value else ""
        return value if scheme in LINK_SCHEMES or policy.is_own(value) else None
    return value
