"""Inline ``style`` attributes filtered by an allow-list, with a real CSS parser (tinycss2).

A declaration is kept only if its property is listed and its value holds nothing but plain
tokens and a few colour/arithmetic functions: every ``url()``, ``image-set()``, ``expression()``,
``var()``, ``attr()`` and every unknown function drops the whole declaration, so nothing in a
style can fetch a resource or escape its box. Serialisation is canonical, so filtering a filtered
style changes nothing.
"""

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


def style_clean(style: str) -> str:
    """The declarations of ``style`` that pass the allow-list, serialised canonically."""
    kept = []
    for node in tinycss2.parse_blocks_contents(style, skip_comments=True, skip_whitespace=True):
        if node.type != "declaration":
            continue  # at-rules (@import) and parse errors go
        name = node.lower_name
        if name not in ALLOWED_PROPERTIES or not _value_is_plain(node.value):
            continue
        value = tinycss2.serialize(node.value).strip()
        if not value or "\\" in value or (name == "display" and value.lower() not in ALLOWED_DISPLAY):
            continue
        kept.append(f"{name}:{value}{' !important' if node.important else ''}")
    return ";".join(kept)


def _value_is_plain(tokens: list) -> bool:
    """Only plain tokens and allow-listed functions (recursively); no url(), blocks or bad tokens."""
    for token in tokens:
        if isinstance(token, tinycss2.ast.Comment):
            continue
        if isinstance(token, tinycss2.ast.FunctionBlock):
            if token.lower_name not in ALLOWED_FUNCTIONS or not _value_is_plain(token.arguments):
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
