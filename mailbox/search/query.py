"""Gmail-style search queries: a tokenizer and a recursive-descent parser producing a small tree.

Grammar (``OR`` binds looser than the implicit AND; ``-`` negates a term or a group)::

    query := any
    any   := all ("OR" all)*
    all   := unary+
    unary := "-" unary | "(" any ")" | term
    term  := word | "quoted phrase" | operator:value | operator:"quoted value"

Words with an unknown ``name:`` prefix (``re:``, ``http://…``) are plain text, as in Gmail; Gmail
operators we cannot answer (``category:``, ``deliveredto:``, …) are refused by name rather than
searched as words that would silently match nothing. ``newer_than:``/``older_than:`` become
``after:``/``before:`` instants. Every problem raises ``SearchQueryError`` with a message fit to
show the user.
"""

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

MAX_QUERY_LENGTH = 1000
MAX_TERMS = 40

TEXT_FIELDS = ("text", "subject", "from", "to", "cc", "bcc", "filename", "label")
CHOICES = {
    "is": ("unread", "read", "starred"),
    "has": ("attachment",),
    "in": ("inbox", "sent", "spam", "trash", "anywhere"),
}
DATE_FIELDS = ("before", "after")
# Relative dates (Gmail's): how far back, as ``after:``/``before:`` that instant.
RELATIVE_FIELDS = {"newer_than": "after", "older_than": "before"}
# Message size in bytes (Gmail's ``size:`` is ``larger:``).
SIZE_FIELDS = {"larger": "larger", "size": "larger", "smaller": "smaller"}
# Gmail operators whose data we do not keep in a searchable form.
UNSUPPORTED = frozenset({"category", "deliveredto", "list", "rfc822msgid"})
OPERATORS = (
    frozenset(TEXT_FIELDS[1:]) | CHOICES.keys() | frozenset(DATE_FIELDS) | RELATIVE_FIELDS.keys() | SIZE_FIELDS.keys()
)
_RELATIVE = re.compile(r"(\d{1,4})([dmy])", re.IGNORECASE)
_SIZE = re.compile(r"(\d{1,12})([kmg]?)b?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_DATE_FORMATS = ("%Y/%m/%d", "%Y-%m-%d", "%Y/%m", "%Y-%m")


class SearchQueryError(ValueError):
    """A query that cannot be searched; ``str(error)`` is a message for the user."""


@dataclass(frozen=True)
class Term:
    """One condition: ``field`` is "text" for free words, else the operator's name. ``value`` is a
    string, or for before:/after: the start of that day in the user's time zone (an aware UTC
    datetime: ``after:2026/03/02`` in Paris is 2026-03-01 23:00 UTC)."""

    field: str
    value: str | datetime | int  # int: a size in bytes, for larger:/smaller:


@dataclass(frozen=True)
class Not:
    node: "Node"


@dataclass(frozen=True)
class All:
    nodes: tuple["Node", ...]


@dataclass(frozen=True)
class Any:
    nodes: tuple["Node", ...]


Node = Term | Not | All | Any


@dataclass(frozen=True)
class _Token:
    kind: str  # "term", "or", "not", "open", "close"
    field: str = ""
    value: str = ""


_OPERATOR_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9_]*):")


def tokenize(query: str) -> list[_Token]:
    """Split ``query`` into tokens; quotes group words, even after an operator (``subject:"a b"``)."""
    tokens: list[_Token] = []
    position, depth, length = 0, 0, len(query)
    while position < length:
        char = query[position]
        if char.isspace():
            position += 1
        elif char == "(":
            tokens.append(_Token("open"))
            depth, position = depth + 1, position + 1
        elif char == ")" and depth:
            tokens.append(_Token("close"))
            depth, position = depth - 1, position + 1
        elif char == "-" and position + 1 < length and not query[position + 1].isspace():
            tokens.append(_Token("not"))
            position += 1
        else:
            token, position = _term(query, position, depth)
            tokens.append(token)
    return tokens


def _term(query: str, position: int, depth: int) -> tuple[_Token, int]:
    prefix = _OPERATOR_PREFIX.match(query, position)
    name = prefix.group(1).lower() if prefix else ""
    if name in UNSUPPORTED:
        raise SearchQueryError(f"“{name}:” is not supported: search with words, from:, to: or subject: instead.")
    field = "text"
    if name in OPERATORS:
        field, position = name, prefix.end()
    if position < len(query) and query[position] == '"':
        closing = query.find('"', position + 1)
        if closing == -1:
            raise SearchQueryError('A quotation mark is not closed: add the closing ".')
        return _Token("term", field, query[position + 1 : closing]), closing + 1
    end = position
    while end < len(query) and not query[end].isspace() and query[end] != '"' and not (query[end] == ")" and depth):
        end += 1
    word = query[position:end]
    if field == "text" and word in ("OR", "AND"):
        return _Token(word.lower()), end
    if field != "text" and not word:
        raise SearchQueryError(f"“{field}:” needs a value, e.g. {_example(field)}.")
    return _Token("term", field, word), end


def _example(field: str) -> str:
    if field in CHOICES:
        return " or ".join(f"{field}:{choice}" for choice in CHOICES[field])
    if field in DATE_FIELDS:
        return f"{field}:2026/01/31"
    if field in RELATIVE_FIELDS:
        return f"{field}:2d, {field}:3m or {field}:1y"
    if field in SIZE_FIELDS:
        return f"{field}:500k or {field}:10M"
    return f'{field}:alice or {field}:"two words"'


class _Parser:
    def __init__(self, tokens: list[_Token], zone: tzinfo, now: datetime) -> None:
        self.tokens = [t for t in tokens if t.kind != "and"]
        self.position = 0
        self.zone = zone
        self.now = now

    def peek(self) -> str:
        return self.tokens[self.position].kind if self.position < len(self.tokens) else "end"

    def take(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def any(self) -> Node:
        nodes = [self.all()]
        while self.peek() == "or":
            self.take()
            if self.peek() in ("end", "close", "or"):
                raise SearchQueryError("“OR” needs something to search on both sides.")
            nodes.append(self.all())
        return nodes[0] if len(nodes) == 1 else Any(tuple(nodes))

    def all(self) -> Node:
        nodes = []
        while self.peek() not in ("end", "close", "or"):
            nodes.append(self.unary())
        if not nodes:
            raise SearchQueryError(
                "“OR” needs something to search on both sides." if self.peek() == "or" else "Empty parentheses."
            )
        return nodes[0] if len(nodes) == 1 else All(tuple(nodes))

    def unary(self) -> Node:
        token = self.take()
        if token.kind == "not":
            if self.peek() in ("end", "close", "or"):
                raise SearchQueryError("“-” must come right before what to leave out, e.g. -newsletter.")
            return Not(self.unary())
        if token.kind == "open":
            node = self.any()
            if self.peek() != "close":
                raise SearchQueryError("A parenthesis is not closed: add the closing ).")
            self.take()
            return node
        return _checked_term(token, self.zone, self.now)


def _checked_term(token: _Token, zone: tzinfo, now: datetime) -> Term:
    field, value = token.field, token.value.strip()
    if field == "in" and value.lower() == "drafts":
        raise SearchQueryError("Drafts are not searched: they are listed on the Drafts page.")
    if field in CHOICES:
        if value.lower() not in CHOICES[field]:
            raise SearchQueryError(f"“{field}:{value}” is not a search option; try {_example(field)}.")
        return Term(field, value.lower())
    if field in DATE_FIELDS:
        return Term(field, _date(field, value, zone))
    if field in RELATIVE_FIELDS:
        return Term(RELATIVE_FIELDS[field], _ago(field, value, now))
    if field in SIZE_FIELDS:
        return Term(SIZE_FIELDS[field], _size(field, value))
    if not any(char.isalnum() for char in value):
        shown = f"{field}:{value}" if field != "text" else value
        raise SearchQueryError(f"“{shown}” has no letters or digits to search for.")
    return Term(field, value)


def _date(field: str, value: str, zone: tzinfo) -> datetime:
    """The start of the day ``value`` names in ``zone``, in UTC. Local midnight with ``fold=0`` is the
    day's first instant even where a DST change skips it (zoneinfo then reads it with the offset
    before the change, which lands on the change itself) or repeats it (the first of the two)."""
    for pattern in _DATE_FORMATS:
        try:
            day = datetime.strptime(value, pattern)  # noqa: DTZ007 - a wall-clock day, placed in ``zone`` below
        except ValueError:
            continue
        return day.replace(tzinfo=zone).astimezone(UTC)
    raise SearchQueryError(f"“{field}:{value}” is not a date; write it as {field}:2026/01/31.")


def _ago(field: str, value: str, now: datetime) -> datetime:
    """``now`` minus ``value`` days, months or years (``2d``, ``3m``, ``1y``); months and years by
    the calendar, the day clamped to the month's last (31 March minus 1m is 28 or 29 February)."""
    match = _RELATIVE.fullmatch(value)
    if match is None:
        raise SearchQueryError(f"“{field}:{value}” is not a duration; try {_example(field)}.")
    count, unit = int(match.group(1)), match.group(2).lower()
    if unit == "d":
        return now - timedelta(days=count)
    months = now.year * 12 + now.month - 1 - count * (12 if unit == "y" else 1)
    year, month = divmod(months, 12)
    if year < 1:
        raise SearchQueryError(f"“{field}:{value}” reaches back too far.")
    return now.replace(year=year, month=month + 1, day=min(now.day, monthrange(year, month + 1)[1]))


def _size(field: str, value: str) -> int:
    match = _SIZE.fullmatch(value)
    if match is None:
        raise SearchQueryError(f"“{field}:{value}” is not a size; try {_example(field)}.")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def parse_query(query: str, *, zone: tzinfo = UTC, now: datetime | None = None) -> Node:
    """The tree of ``query``, its dates read as days in ``zone`` and its relative dates counted back
    from ``now`` (the current time by default). Raises ``SearchQueryError`` for empty, overlong or
    malformed input."""
    if len(query) > MAX_QUERY_LENGTH:
        raise SearchQueryError(f"That search is too long: keep it under {MAX_QUERY_LENGTH} characters.")
    tokens = tokenize(query)
    if not any(t.kind == "term" for t in tokens):
        raise SearchQueryError("Type a word or a search operator such as from:alice to search.")
    if sum(t.kind == "term" for t in tokens) > MAX_TERMS:
        raise SearchQueryError(f"That search has too many parts: use at most {MAX_TERMS}.")
    # The tokenizer emits a closing parenthesis only inside an open one, so this reads to the end.
    return _Parser(tokens, zone, now or datetime.now(UTC)).any()
