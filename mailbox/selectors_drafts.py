"""Reads for compose: drafts, the message being replied to or forwarded, contact suggestions.

Every function takes the user's mailbox and filters on it; a foreign id reads as absent.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower

from mailbox.models import Alias, Attachment, Contact, Draft, DraftAttachment, Mailbox, Message, Participant

DRAFTS_PAGE_SIZE = 50
AUTOCOMPLETE_LIMIT = 8


@dataclass(frozen=True)
class DraftCursor:
    """A keyset position in the drafts list: the (updated_at, id) of the last row shown."""

    updated_at: datetime
    draft_id: int

    def encode(self) -> str:
        return f"{self.updated_at.isoformat()}_{self.draft_id}"

    @classmethod
    def decode(cls, value: str) -> "DraftCursor | None":
        """Parse a cursor from a query string; ``None`` for anything malformed."""
        stamp, _, draft_id = value.rpartition("_")
        try:
            when = datetime.fromisoformat(stamp)
            return cls(when, int(draft_id)) if when.tzinfo else None
        except ValueError:
            return None


@dataclass(frozen=True)
class DraftPage:
    drafts: list[Draft]
    older: DraftCursor | None


def draft_list(*, mailbox: Mailbox, older_than: DraftCursor | None = None) -> DraftPage:
    """One page of the mailbox's drafts, most recently edited first (keyset, never OFFSET)."""
    rows = Draft.objects.filter(mailbox=mailbox)
    if older_than is not None:
        rows = rows.filter(
            Q(updated_at__lt=older_than.updated_at) | Q(updated_at=older_than.updated_at, id__lt=older_than.draft_id)
        )
    page = list(rows.order_by("-updated_at", "-id")[: DRAFTS_PAGE_SIZE + 1])
    older = None
    if len(page) > DRAFTS_PAGE_SIZE:
        last = page[DRAFTS_PAGE_SIZE - 1]
        older = DraftCursor(last.updated_at, last.id)
    return DraftPage(drafts=page[:DRAFTS_PAGE_SIZE], older=older)


def draft_get(*, mailbox: Mailbox, draft_id: int) -> Draft | None:
    """The draft with its attachments (one extra query), or ``None`` if it is not this mailbox's."""
    attachments = Prefetch("attachments", queryset=DraftAttachment.objects.select_related("blob").order_by("id"))
    return Draft.objects.filter(mailbox=mailbox, pk=draft_id).prefetch_related(attachments).first()


def source_message_get(*, mailbox: Mailbox, message_id: int) -> Message | None:
    """A message of this mailbox to reply to or forward, with its body, address participants and
    attachments loaded (three queries), or ``None``."""
    return (
        Message.objects.filter(mailbox=mailbox, pk=message_id)
        .select_related("body")
        .prefetch_related(
            Prefetch("participants", queryset=Participant.objects.order_by("role", "position")),
            Prefetch("attachments", queryset=Attachment.objects.select_related("blob").order_by("position")),
        )
        .first()
    )


def own_addresses(*, mailbox: Mailbox) -> set[str]:
    """The mailbox's primary address and aliases, lowercase: never recipients of a reply-all."""
    aliases = Alias.objects.filter(mailbox=mailbox).values_list("address", flat=True)
    return {mailbox.address, *aliases}


def contacts_autocomplete(*, mailbox: Mailbox, query: str) -> list[Contact]:
    """Contacts whose address, name, or a word of the name starts with ``query`` (case-insensitive),
    best first: frequent and recent correspondents (``CONTACT_RANK``), then by address."""
    prefix = query.strip().lower()
    if not prefix:
        return []
    ranked = contacts_matching(mailbox=mailbox, prefix=prefix).annotate(rank=CONTACT_RANK)
    return list(ranked.order_by("-rank", "address")[:AUTOCOMPLETE_LIMIT])


# Frequency decayed by recency: exchanges count fully within a month, a tenth after ten months.
# Contacts without a date (none yet) rank as if last seen long ago.
CONTACT_RANK = RawSQL(
    "times_contacted / (1.0 + COALESCE(EXTRACT(EPOCH FROM (now() - last_contacted_at)), 3.2e8) / 2592000.0)", []
)
# The words of a display name, as the contact_name_words index holds them: "Smith" finds "John Smith"
# and "carol" finds "Jones, Carol". The 'simple' configuration lowercases and splits, never stems.
NAME_WORDS = SearchVector("display_name", config="simple")


def contacts_matching(*, mailbox: Mailbox, prefix: str) -> QuerySet[Contact]:
    """Contacts of ``mailbox`` whose address or lowercased name starts with the lowercase
    ``prefix``, or a word of whose name does: a BitmapOr of two range scans on the (mailbox,
    pattern-ops) indexes and one on the names' word index."""
    matching = Q(address__startswith=prefix) | Q(name_lower__startswith=prefix)
    words = _tsquery_prefix(prefix)
    if words:
        matching |= Q(name_words=SearchQuery(words, config="simple", search_type="raw"))
    contacts = Contact.objects.filter(mailbox=mailbox).alias(name_lower=Lower("display_name"), name_words=NAME_WORDS)
    return contacts.filter(matching)


def _tsquery_prefix(prefix: str) -> str:
    """A tsquery matching words that start with each word of ``prefix`` in turn ("dave c" →
    'dave':* <-> 'c':*), built from letters and digits only: typed text never reaches the
    tsquery syntax."""
    words = ["".join(ch for ch in word if ch.isalnum()) for word in prefix.split()]
    return " <-> ".join(f"{word}:*" for word in words if word)
