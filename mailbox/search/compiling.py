"""A parsed query as one SQL condition on a message row (alias ``m``), parameters separate.

Every sub-select is scoped by ``mailbox_id`` as well as by the message, so the condition never
reads another mailbox's rows even where the join alone would already be enough.
"""

from datetime import datetime

from mailbox.models import Mailbox
from mailbox.search.indexing import TEXT_SEARCH_CONFIG
from mailbox.search.normalizing import search_text
from mailbox.search.query import All, Any, Node, Not, Term

_PHRASE = f"phraseto_tsquery('{TEXT_SEARCH_CONFIG}', %s)"
# tsquery has no function to restrict a phrase to a weight; rewrite its text form, whose lexemes
# are always single-quoted (inner quotes doubled), appending the weight to each: 'a' <-> 'b' → 'a':A <-> 'b':A.
_WEIGHTED_PHRASE = "regexp_replace(" + _PHRASE + "::text, '''(?:[^'']|'''')*''', '\\&:{weight}', 'g')::tsquery"
# The weights indexing gives each part of the documents: attachment file names are C of
# ``search_document``, Bcc addresses D of ``address_document``.
_TEXT_WEIGHTS = {"subject": "A", "filename": "C"}
_ADDRESS_WEIGHTS = {"from": "A", "to": "B", "cc": "C", "bcc": "D"}
_LABEL_EXISTS = (
    "EXISTS (SELECT 1 FROM mailbox_messagelabel ml JOIN mailbox_label l ON l.id = ml.label_id"
    " WHERE ml.message_id = m.id AND ml.mailbox_id = %s AND l.mailbox_id = %s AND {test})"
)
_THREAD_LABEL_EXISTS = (
    "EXISTS (SELECT 1 FROM mailbox_threadlabel tl JOIN mailbox_label l ON l.id = tl.label_id"
    " WHERE tl.thread_id = t.id AND tl.mailbox_id = %s AND l.mailbox_id = %s AND {test})"
)
_LABEL_NAME = "(lower(l.name) = lower(%s) OR lower(replace(l.name, ' ', '-')) = lower(%s))"
_THREAD_FLAGS = {
    ("is", "unread"): ("t.unread_count > 0", []),
    ("is", "starred"): ("t.starred_count > 0", []),
    ("has", "attachment"): ("t.has_attachments", []),
}
_FLAGS = {
    ("is", "unread"): "NOT m.is_read",
    ("is", "read"): "m.is_read",
    ("is", "starred"): "m.is_starred",
    ("has", "attachment"): "m.has_attachments",
}
_HIDDEN_ROLES = ("spam", "trash")
_INDEXED_FIELDS = frozenset({"text", *_TEXT_WEIGHTS, *_ADDRESS_WEIGHTS})


def message_condition(tree: Node, *, mailbox: Mailbox) -> tuple[str, list]:
    """SQL for "message ``m`` matches ``tree``", with Gmail's default of leaving Spam and Trash out
    unless the query names ``in:spam``, ``in:trash`` or ``in:anywhere``."""
    sql, params = _node(tree, mailbox)
    if not _names_hidden_folder(tree):
        hidden = _LABEL_EXISTS.format(test="l.role IN (%s, %s)")
        sql, params = f"({sql}) AND NOT {hidden}", [*params, mailbox.id, mailbox.id, *_HIDDEN_ROLES]
    return sql, params


def indexed_condition(tree: Node, *, mailbox: Mailbox) -> tuple[str, list] | None:
    """A condition that every match of ``tree`` satisfies and the GIN indexes answer alone (its
    full-text and address terms), or ``None`` when there is none (only flags, dates, labels or
    negations at some level that matters)."""
    necessary = _indexed_part(tree)
    return None if necessary is None else _node(necessary, mailbox)


def thread_condition(tree: Node, *, mailbox: Mailbox) -> tuple[str, list]:
    """SQL on the thread row (alias ``t``) that every thread with a match satisfies, from the terms
    the whole query requires, read off the thread summary and label index: a thread walk skips
    threads without starred, unread or attached messages, out of the folder, or out of the dates,
    without reading their messages. ``TRUE`` when no term qualifies."""
    required = tree.nodes if isinstance(tree, All) else (tree,)
    parts = [_thread_term(term, mailbox) for term in required if isinstance(term, Term)]
    parts = [part for part in parts if part is not None]
    if not parts:
        return "TRUE", []
    return " AND ".join(sql for sql, _ in parts), [p for _, params in parts for p in params]


def _thread_term(term: Term, mailbox: Mailbox) -> tuple[str, list] | None:
    if term.field == "before":
        return "t.first_message_at < %s", [term.value]
    if term.field == "after":
        return "t.last_message_at >= %s", [term.value]
    if term.field == "in" and term.value != "anywhere":
        return _THREAD_LABEL_EXISTS.format(test="l.role = %s"), [mailbox.id, mailbox.id, term.value]
    if term.field == "label":
        return _THREAD_LABEL_EXISTS.format(test=_LABEL_NAME), [mailbox.id, mailbox.id, term.value, term.value]
    return _THREAD_FLAGS.get((term.field, term.value))


def _indexed_part(tree: Node) -> Node | None:
    if isinstance(tree, Term):
        return tree if tree.field in _INDEXED_FIELDS else None
    if isinstance(tree, Not):
        return None
    parts = [_indexed_part(node) for node in tree.nodes]
    if isinstance(tree, All):
        kept = tuple(part for part in parts if part is not None)
        return (kept[0] if len(kept) == 1 else All(kept)) if kept else None
    return None if any(part is None for part in parts) else Any(tuple(parts))


def _names_hidden_folder(tree: Node) -> bool:
    if isinstance(tree, Term):
        return tree.field == "in" and tree.value in (*_HIDDEN_ROLES, "anywhere")
    if isinstance(tree, Not):
        return _names_hidden_folder(tree.node)
    return any(_names_hidden_folder(node) for node in tree.nodes)


def _node(tree: Node, mailbox: Mailbox) -> tuple[str, list]:
    if isinstance(tree, Term):
        return _term(tree, mailbox)
    if isinstance(tree, Not):
        sql, params = _node(tree.node, mailbox)
        return f"NOT ({sql})", params
    parts = [_node(node, mailbox) for node in tree.nodes]
    joiner = " AND " if isinstance(tree, All) else " OR "
    return joiner.join(f"({sql})" for sql, _ in parts), [p for _, params in parts for p in params]


def _term(term: Term, mailbox: Mailbox) -> tuple[str, list]:
    field, value = term.field, term.value
    if isinstance(value, datetime):
        return ("m.date < %s" if field == "before" else "m.date >= %s"), [value]
    if field in ("larger", "smaller"):
        return ("m.size > %s" if field == "larger" else "m.size < %s"), [value]
    if field == "text":
        return f"m.search_document @@ {_PHRASE}", [search_text(value)]
    if field in _TEXT_WEIGHTS:
        return f"m.search_document @@ {_WEIGHTED_PHRASE.format(weight=_TEXT_WEIGHTS[field])}", [search_text(value)]
    if field in _ADDRESS_WEIGHTS:
        address = mailbox.address if value.lower() == "me" else value
        return f"m.address_document @@ {_WEIGHTED_PHRASE.format(weight=_ADDRESS_WEIGHTS[field])}", [
            search_text(address)
        ]
    if field == "label":
        return _LABEL_EXISTS.format(test=_LABEL_NAME), [mailbox.id, mailbox.id, value, value]
    if field == "in":
        if value == "anywhere":
            return "TRUE", []
        return _LABEL_EXISTS.format(test="l.role = %s"), [mailbox.id, mailbox.id, value]
    return _FLAGS[field, value], []
