"""The search documents of a message, written once at delivery (a message's text never changes).

Two tsvector columns on ``Message``, both under a GIN index led by ``mailbox_id``:

- ``search_document``, for free words: subject (weight A), participants' names and addresses
  (B), attachment file names (C), body text (D);
- ``address_document``, for ``from:``/``to:``/``cc:``: the From addresses (A), To (B), Cc (C),
  Bcc (D), each as name, full address, local part and domain, so ``from:alice``,
  ``from:example.com`` and ``from:alice@example.com`` all match.
"""

import re
from collections.abc import Iterable, Sequence

from django.contrib.postgres.search import SearchVectorField
from django.db import connection
from django.db.models.expressions import RawSQL

from mailbox.parsing import ParsedMessage
from mailbox.search.normalizing import BODY_INDEX_LIMIT, html_visible_text, search_text
from mailsite.rows import Computed

# The configuration of every to_tsvector/phraseto_tsquery of search (see normalizing for why).
TEXT_SEARCH_CONFIG = "simple"

# One tsvector from four texts, weighted A to D.
_WEIGHTED_SQL = " || ".join(f"setweight(to_tsvector('{TEXT_SEARCH_CONFIG}', %s), '{weight}')" for weight in "ABCD")
# The same for ``rows_insert``, the four texts being its inputs {0} … {3}.
_WEIGHTED_INPUTS_SQL = " || ".join(
    f"setweight(to_tsvector('{TEXT_SEARCH_CONFIG}', {{{n}}}), '{weight}')" for n, weight in enumerate("ABCD")
)
_NON_WORD = re.compile(r"[\W_]+")
_ADDRESS_ROLES = ("from", "to", "cc", "bcc")
# Participants in free-word search, in this order (delivery and backfill must agree on positions).
# Delivered-To is left out: it is the mailbox's own address on nearly every message.
_PEOPLE_ROLES = ("from", "sender", "reply_to", "to", "cc", "bcc")
BACKFILL_BATCH = 500


def address_terms(name: str, address: str) -> str:
    """What a participant is findable by: name, full address, local part (also split at dots and
    dashes) and domain."""
    local, _, domain = address.partition("@")
    return " ".join((name, address, local, _NON_WORD.sub(" ", local), domain))


def document_texts(
    *, subject: str, people: Sequence[tuple[str, str, str]], filenames: Iterable[str], text: str, html: str
) -> tuple[list[str], list[str]]:
    """The four weighted texts of each document, normalised. ``people`` are (role, name, address);
    file names are also split into words (``budget-2027.pdf`` is found by ``budget``)."""
    body = text if text.strip() else html_visible_text(html[:BODY_INDEX_LIMIT])
    people = sorted((p for p in people if p[0] in _PEOPLE_ROLES), key=lambda p: _PEOPLE_ROLES.index(p[0]))
    everyone = " ".join(address_terms(name, address) for _, name, address in people)
    files = " ".join(f"{name} {_NON_WORD.sub(' ', name)}" for name in filenames)
    search = [subject, everyone, files, body[:BODY_INDEX_LIMIT]]
    by_role = [
        " ".join(address_terms(name, address) for r, name, address in people if r == role) for role in _ADDRESS_ROLES
    ]
    return [search_text(t) for t in search], [search_text(t) for t in by_role]


DocumentTexts = tuple[list[str], list[str]]  # the four weighted texts of each document


def search_document_texts(*, parsed: ParsedMessage) -> DocumentTexts:
    """The texts of a new message's ``search_document`` and ``address_document``."""
    return document_texts(
        subject=parsed.subject,
        people=[(role, a.name, a.address) for role, found in parsed.addresses.items() for a in found],
        filenames=[a.filename for a in parsed.attachments if a.filename],
        text=parsed.text,
        html=parsed.html,
    )


def search_documents(*, texts: DocumentTexts) -> tuple[RawSQL, RawSQL]:
    """SQL expressions for a new message's ``search_document`` and ``address_document``, set on the
    instance before its INSERT so indexing costs no extra query."""
    search, addresses = texts
    return (
        # The SQL is a constant; every text goes in as a parameter.
        RawSQL(_WEIGHTED_SQL, search, output_field=SearchVectorField()),  # noqa: S611
        RawSQL(_WEIGHTED_SQL, addresses, output_field=SearchVectorField()),  # noqa: S611
    )


def search_documents_computed(*, texts: Sequence[DocumentTexts]) -> dict[str, Computed]:
    """The two document columns of many new messages (one ``texts`` per row) for ``rows_insert``:
    the same SQL as ``search_documents``, each text an array element."""
    return {
        column: Computed(_WEIGHTED_INPUTS_SQL, [("text", [row[which][n] for row in texts]) for n in range(4)])
        for which, column in enumerate(("search_document", "address_document"))
    }


_BACKFILL_ROWS_SQL = """
SELECT m.id, m.subject, b.text, b.html,
    COALESCE((SELECT array_agg(ARRAY[p.role, p.display_name, p.address] ORDER BY p.role, p.position)
              FROM mailbox_participant p WHERE p.message_id = m.id), '{}'),
    COALESCE((SELECT array_agg(a.filename) FROM mailbox_attachment a
              WHERE a.message_id = m.id AND a.filename <> ''), '{}')
FROM mailbox_message m LEFT JOIN mailbox_messagebody b ON b.message_id = m.id
WHERE m.search_document IS NULL AND m.id > %s
ORDER BY m.id LIMIT %s
"""
_BACKFILL_UPDATE_SQL = (  # built from constants only; the texts are parameters
    f"UPDATE mailbox_message SET search_document = {_WEIGHTED_SQL}, address_document = {_WEIGHTED_SQL} "  # noqa: S608
    "WHERE id = %s"
)


def documents_backfill(*, batch_size: int = BACKFILL_BATCH) -> int:
    """Index the messages that have no search document yet (delivered before search existed, or
    written by a path that does not index), in batches by id. Returns how many were indexed."""
    done, last_id = 0, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_BACKFILL_ROWS_SQL, [last_id, batch_size])
            rows = cursor.fetchall()
            if not rows:
                return done
            cursor.executemany(_BACKFILL_UPDATE_SQL, [_backfill_params(row) for row in rows])
        done += len(rows)
        last_id = rows[-1][0]


def _backfill_params(row: tuple) -> list:
    message_id, subject, text, html, people, filenames = row
    search, addresses = document_texts(
        subject=subject, people=[tuple(p) for p in people], filenames=filenames, text=text or "", html=html or ""
    )
    return [*search, *addresses, message_id]
