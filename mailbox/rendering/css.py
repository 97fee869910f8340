"""Inline ``style`` attributes and ``<style>`` elements filtered by an allow-list, with a real CSS
parser (tinycss2).

A declaration is kept only if its property is listed and its value holds nothing but plain
tokens and a few colour/arithmetic functions: every ``url()``, ``image-set()``, ``expression()``,
``var()``, ``attr()`` and every unknown function drops the whole declaration, so nothing in a
style can fetch a resource or escape its box. Style sheets keep style rules with plain selectors,
``@media`` (rules inside filtered the same way) and ``@font-face`` naming installed fonts only
(``local()``); every other at-rule (``@import``, ``@charset``, ``@keyframes``…) goes. No rule
whose text holds ``<`` or ``\\`` is written, so a sheet can never close its ``<style>`` element.
Serialisation is canonical, so filtering a filtered style or sheet changes nothing.
"""

from collections.abc import Callable, Iterable

import tinycss2

ALLOWED_PROPERTIES = frozenset(
    {
        "color", "background-color", "opacity",
        "font", "font-family", "font-size", "font-style", "font-weight", "font-variant", "line-height",
        "letter-spacing", "word-spacing", "text-align", "text-decoration", "text-indent", "text-transform",
        "white-space", "vertical-align", "direction", "word-break", "overflow-wrap", "word-wrap",
        "width", "height", "max-width", "min-width", "max-height", "min-height",
        "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
        "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
        "border", "border-top", "border-right", "border-bottom", "border-left",
        "border-color", "border-style", "border-width", "border-radius",
        "border-top-color", "border-right-color", "border-bottom-color", "border-left-color",
        "border-top-style", "border-right-style", "border-bottom-style", "border-left-style",
        "border-top-width", "border-right-width", "border-bottom-width", "border-left-width",
        "border-collapse", "border-spacing", "table-layout", "caption-side", "empty-cells",
        "display", "float", "clear", "overflow", "overflow-x", "overflow-y", "text-overflow",
        "list-style-type", "list-style-position",
    }
)  # fmt: skip
# Display values that keep the message in normal flow (no "contents" tricks or grid overlays).
ALLOWED_DISPLAY = frozenset(
    {"none", "block", "inline", "inline-block", "table", "table-row", "table-cell", "list-item"}
)
ALLOWED_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla", "calc"})
# @font-face may name an installed font under another family name, never fetch one.
FONT_FACE_DESCRIPTORS = frozenset({"font-family", "font-style", "font-weight", "font-stretch", "font-display", "src"})
FONT_SOURCE_FUNCTIONS = frozenset({"local"})
# Selector syntax: combinators, attribute matchers, pseudo-classes and pseudo-elements.
SELECTOR_LITERALS = frozenset({".", "*", ">", "+", "~", ",", ":", "|", "=", "~=", "|=", "^=", "$=", "*=", "-"})
SELECTOR_FUNCTIONS = frozenset(
    {"not", "is", "where", "has", "lang", "dir", "nth-child", "nth-last-child", "nth-of-type", "nth-last-of-type"}
)
# A sheet's text is written back after filtering; bounded so a hostile sheet costs little to parse.
MAX_STYLESHEET_CHARS = 64_000
MAX_NESTING = 3
_PLAIN_TOKENS = (
    tinycss2.ast.WhitespaceToken,
    tinycss2.ast.IdentToken,
    tinycss2.ast.NumberToken,
    tinycss2.ast.PercentageToken,
    tinycss2.ast.DimensionToken,
    tinycss2.ast.HashToken,
    tinycss2.ast.StringToken,
    tinycss2.ast.LiteralToken,
)
_SELECTOR_TOKENS = (
    tinycss2.ast.WhitespaceToken,
    tinycss2.ast.IdentToken,
    tinycss2.ast.NumberToken,
    tinycss2.ast.DimensionToken,
    tinycss2.ast.HashToken,
    tinycss2.ast.StringToken,
)
_MEDIA_TOKENS = (
    tinycss2.ast.WhitespaceToken,
    tinycss2.ast.IdentToken,
    tinycss2.ast.NumberToken,
    tinycss2.ast.DimensionToken,
)


def style_clean(style: str) -> str:
    """The declarations of ``style`` that pass the allow-list, serialised canonically."""
    return ";".join(_declarations_clean(style))


def stylesheets_clean(sheets: Iterable[str]) -> str:
    """The rules of ``sheets`` (the texts of a document's ``<style>`` elements, in order) that
    pass the allow-list, as one canonical sheet of at most ``MAX_STYLESHEET_CHARS``. Sheets past
    twice that much text are not read. Idempotent: the result is one sheet that filters to
    itself."""
    kept: list[str] = []
    size, unread = 0, 2 * MAX_STYLESHEET_CHARS
    for sheet in sheets:
        unread -= len(sheet)
        if unread < 0:
            break
        cleaned = stylesheet_clean(sheet)
        if size + len(cleaned) > MAX_STYLESHEET_CHARS:
            break
        kept.append(cleaned)
        size += len(cleaned)
    return "".join(kept)


def stylesheet_clean(sheet: str) -> str:
    """The rules of one style sheet that pass the allow-list, serialised canonically."""
    return "".join(_rules_clean(tinycss2.parse_stylesheet(sheet, skip_comments=True, skip_whitespace=True), 0))


def _rules_clean(nodes: Iterable, depth: int) -> list[str]:
    kept = []
    for node in nodes:
        if node.type == "qualified-rule":
            text = _style_rule_clean(node)
        elif node.type == "at-rule" and node.content is not None and depth < MAX_NESTING:
            text = _at_rule_clean(node, depth)
        else:
            continue  # parse errors, and statement at-rules: @import, @charset, @namespace
        if text and "<" not in text and "\\" not in text:
            kept.append(text)
    return kept


def _style_rule_clean(rule: tinycss2.ast.QualifiedRule) -> str:
    selector = _prelude_text(rule.prelude, _selector_is_plain)
    declarations = _declarations_clean(rule.content)
    return f"{selector}{{{';'.join(declarations)}}}" if selector and declarations else ""


def _at_rule_clean(rule: tinycss2.ast.AtRule, depth: int) -> str:
    if rule.lower_at_keyword == "media":
        query = _prelude_text(rule.prelude, _media_query_is_plain)
        nested = tinycss2.parse_rule_list(rule.content, skip_comments=True, skip_whitespace=True)
        inner = _rules_clean(nested, depth + 1)
        return f"@media {query}{{{''.join(inner)}}}" if query and inner else ""
    if rule.lower_at_keyword == "font-face" and all(t.type == "whitespace" for t in rule.prelude):
        declarations = _declarations_clean(rule.content, allowed=FONT_FACE_DESCRIPTORS)
        has_source = any(d.startswith("src:") for d in declarations)  # else its remote sources went
        return f"@font-face{{{';'.join(declarations)}}}" if has_source else ""
    return ""  # @keyframes, @supports, @page, @layer… and anything unknown


def _prelude_text(tokens: list, is_plain: Callable[[list], bool]) -> str:
    """The prelude with its whitespace collapsed, or "" if ``is_plain`` refuses it."""
    if not is_plain(tokens):
        return ""
    collapsed = [
        tinycss2.ast.WhitespaceToken(t.source_line, t.source_column, " ") if t.type == "whitespace" else t
        for t in tokens
    ]
    return tinycss2.serialize(collapsed).strip()


def _selector_is_plain(tokens: list) -> bool:
    for token in tokens:
        if isinstance(token, tinycss2.ast.LiteralToken):
            ok = token.value in SELECTOR_LITERALS
        elif isinstance(token, tinycss2.ast.SquareBracketsBlock):
            ok = _selector_is_plain(token.content)
        elif isinstance(token, tinycss2.ast.FunctionBlock):
            ok = token.lower_name in SELECTOR_FUNCTIONS and _selector_is_plain(token.arguments)
        else:
            ok = isinstance(token, _SELECTOR_TOKENS) and not _token_is_suspicious(token)
        if not ok:
            return False
    return True


def _media_query_is_plain(tokens: list) -> bool:
    """Media types and features: ``screen and (max-width:600px)``; no functions."""
    for token in tokens:
        if isinstance(token, tinycss2.ast.LiteralToken):
            ok = token.value in {",", ":", "/", ">", "="}
        elif isinstance(token, tinycss2.ast.ParenthesesBlock):
            ok = _media_query_is_plain(token.content)
        else:
            ok = isinstance(token, _MEDIA_TOKENS)
        if not ok:
            return False
    return True


def _declarations_clean(content: str | list | None, *, allowed: frozenset[str] = ALLOWED_PROPERTIES) -> list[str]:
    """``name:value`` for each declaration of a style attribute or rule body that passes."""
    kept = []
    for node in tinycss2.parse_blocks_contents(content or [], skip_comments=True, skip_whitespace=True):
        if node.type != "declaration":
            continue  # at-rules (@import), nested rules and parse errors go
        name = node.lower_name
        functions = FONT_SOURCE_FUNCTIONS if allowed is FONT_FACE_DESCRIPTORS and name == "src" else ALLOWED_FUNCTIONS
        if name not in allowed or not _value_is_plain(node.value, functions):
            continue
        value = tinycss2.serialize(node.value).strip()
        if not value or "\\" in value or (name == "display" and value.lower() not in ALLOWED_DISPLAY):
            continue
        kept.append(f"{name}:{value}{' !important' if node.important else ''}")
    return kept


def _value_is_plain(tokens: list, functions: frozenset[str]) -> bool:
    """Only plain tokens and allow-listed functions (recursively); no url(), blocks or bad tokens."""
    for token in tokens:
        if isinstance(token, tinycss2.ast.Comment):
            continue
        if isinstance(token, tinycss2.ast.FunctionBlock):
            if token.lower_name not in functions or not _value_is_plain(token.arguments, functions):
                return False
        elif not isinstance(token, _PLAIN_TOKENS) or _token_is_suspicious(token):
            return False
    return True


def _token_is_suspicious(token: object) -> bool:
    if isinstance(token, tinycss2.ast.LiteralToken):
        return token.value in {";", "{", "}", "<!--", "-->"}
    if isinstance(token, tinycss2.ast.StringToken):
        return any(c in token.value for c in "\\\n\r\"'<>")
    return False
