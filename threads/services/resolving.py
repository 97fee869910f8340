"""The resolver: which thread a new message belongs to, from its headers and participants alone.

In order:
1. **Headers.** The message's own Message-ID (replies that came first may have named it), then
   In-Reply-To and References, nearest ancestor first. Every id is mapped to a thread, those only
   referenced so far included, so a late parent finds the replies that came before it; when the
   ids connect several threads, they merge. Junk ids are ignored; membership has no parent links, so no
   loop can form.
2. **Subject.** A reply that lost its headers (its subject has a reply or forward prefix) joins a
   thread with the same normalised subject when their participants overlap and the thread was
   active within ``WINDOW`` of the message's date.
3. **Guardrails.** Generic subjects never join by subject; threading headers naming ids the
   candidate does not hold (none of them known, or they would have placed the message) block a
   subject join, In-Reply-To as much as References; a thread of ``SUBJECT_JOIN_MAX_MESSAGES`` or
   more stops growing by subject; list mail joins only threads of its list; private replies to bulk
   mail make one conversation per correspondent; threads the user arranged are never merged
   automatically.
4. **Fallback.** A new thread. A reply without headers that found no thread starts a *fragment*;
   the next new thread of its subject and correspondents adopts it, as the reply would have joined
   that thread had it arrived after it.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from threads.models import Thread, ThreadMessageId
from threads.services.batching import batch_current, known_ids_fetch, thread_rows_readable
from threads.services.locking import conversation_lock, threads_lock
from threads.services.restructuring import thread_absorb, thread_create
from threads.subjects import SubjectKey, subject_analyse

WINDOW = timedelta(days=14)
# Far above real conversations: large list discussions keep growing, a runaway subject stops.
SUBJECT_JOIN_MAX_MESSAGES = 200
SUBJECT_CANDIDATES = 10
MAX_ANCESTORS = 100
PLACEMENT_ATTEMPTS = 3
MAX_ID_LENGTH = 998
_VALID_ID = re.compile(r"^[^\s<>@]+@[^\s<>@]+$")

# Why a message is in its thread, as mailbox.Message.ThreadReason spells it.
REASON_REFERENCE = "reference"
REASON_SUBJECT = "subject"
REASON_NEW = "new"


@dataclass(frozen=True)
class ThreadPlacement:
    thread: Thread
    reason: str  # REASON_*
    normalized_subject: str = ""  # the message's own
    # Threads merged into ``thread``: the caller moves their messages, recounts, then deletes them.
    absorbed_thread_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Incoming:
    message_id: str
    ancestors: tuple[str, ...]  # nearest first
    subject_text: str
    subject: SubjectKey
    list_id: str
    date: datetime
    sender: str
    recipients: frozenset[str]
    is_bulk: bool

    @property
    def parties(self) -> frozenset[str]:
        return (self.recipients | {self.sender}) - {""}


class _KnownId(NamedTuple):
    message_id: str
    thread_id: int
    seen: bool
    sender: str
    is_bulk: bool


@dataclass
class _Links:
    primary: int | None = None  # thread of the nearest known id, the message's own first
    others: list[int] = field(default_factory=list)  # further threads the ids connect: merged
    bulk_parent: _KnownId | None = None  # the nearest known id: bulk mail privately replied to
    followed: list[str] = field(default_factory=list)  # ancestor ids up to any bulk parent
    own_known: bool = False  # the message's own id was mapped already (named by earlier replies)

    def settle(self, found: list[tuple[str, int]]) -> "_Links":
        """From the known ids (id, thread), nearest first: the first thread is the message's, the others
        merge into it."""
        threads = list(dict.fromkeys(thread for _, thread in found))
        if self.primary is None and threads:
            self.primary = threads[0]
        self.others = [t for t in threads if t != self.primary]
        return self


@transaction.atomic(savepoint=False)
def thread_place_message(
    *,
    mailbox_id: int,
    message_id: str,
    in_reply_to: str,
    references: list[str],
    subject: str,
    list_id: str = "",
    date: datetime | None = None,
    sender: str = "",
    recipients: frozenset[str] | tuple[str, ...] = (),
    is_bulk: bool = False,
) -> ThreadPlacement:
    """Find the thread for a new message (or start one) and record its ids for later replies.

    ``sender`` is "" when the mailbox's own address sent it; ``recipients`` are the other addresses
    it was from or to, without the mailbox's own. Side effects: advisory locks until commit; the
    message's own id and the ids it references are mapped to the thread; threads the ids connect
    are merged (the caller completes the merge, see ``ThreadPlacement.absorbed_thread_ids``).
    """
    ancestors = _ancestor_ids(message_id=message_id, in_reply_to=in_reply_to, references=references)
    incoming = _Incoming(
        message_id=message_id,
        ancestors=ancestors,
        subject_text=subject,
        subject=subject_analyse(subject, list_id=list_id),
        list_id=list_id,
        date=date or timezone.now(),
        sender=sender,
        recipients=frozenset(recipients),
        is_bulk=is_bulk,
    )
    subject_keys = [] if incoming.subject.is_generic else incoming.subject.keys
    conversation_lock(mailbox_id=mailbox_id, message_ids=[message_id, *incoming.ancestors], subject_keys=subject_keys)
    for _ in range(PLACEMENT_ATTEMPTS):
        links = _links(mailbox_id, incoming)
        placement = _placement(mailbox_id, incoming, links)
        if placement is not None:
            _record_message_ids(mailbox_id, placement, incoming, links)
            return placement
    raise RuntimeError(f"threads kept changing while placing {message_id} in mailbox {mailbox_id}")


def _ancestor_ids(*, message_id: str, in_reply_to: str, references: list[str]) -> tuple[str, ...]:
    """Valid ids other than the message's own, nearest first: In-Reply-To, then References last to first."""
    ordered = [in_reply_to, *reversed(references)]
    ancestors = [i for i in dict.fromkeys(ordered) if i != message_id and _is_message_id(i)]
    if len(ancestors) > MAX_ANCESTORS:
        ancestors = [*ancestors[: MAX_ANCESTORS - 1], ancestors[-1]]  # the nearest ones and the root
    return tuple(ancestors)


def _is_message_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH and _VALID_ID.match(value) is not None


def _links(mailbox_id: int, incoming: _Incoming) -> _Links:
    """Which threads the message's ids lead to. Ids beyond bulk mail are not followed: they would
    fuse every correspondent's conversation about it into one."""
    ordered = [incoming.message_id, *incoming.ancestors]
    rows = {i: _KnownId(*row) for i, row in known_ids_fetch(mailbox_id=mailbox_id, message_ids=ordered).items()}
    links = _Links(own_known=incoming.message_id in rows)
    found: list[tuple[str, int]] = []
    for message_id in ordered:
        row = rows.get(message_id)
        own = message_id == incoming.message_id
        if row is not None and not own and row.seen and row.is_bulk:
            if not found:
                if _private_party(incoming, row.sender):
                    links.bulk_parent = row
                else:
                    links.primary = row.thread_id
            break
        if not own:
            links.followed.append(message_id)
        if row is not None:
            found.append((message_id, row.thread_id))
    return links.settle(found)


def _private_party(incoming: _Incoming, bulk_sender: str) -> str:
    """The one correspondent a reply to bulk mail is exchanged with, or "" if it is not private."""
    if incoming.list_id:
        return ""
    parties = incoming.parties - {bulk_sender}
    return next(iter(parties)) if len(parties) == 1 else ""


def _placement(mailbox_id: int, incoming: _Incoming, links: _Links) -> ThreadPlacement | None:
    """``None`` when a thread found was merged away by a concurrent writer: look again."""
    if links.bulk_parent is not None:
        return _by_branch(mailbox_id, incoming, links.bulk_parent)
    if links.primary is not None:
        return _by_reference(mailbox_id, incoming, links)
    return _by_subject(mailbox_id, incoming) or _new(mailbox_id, incoming)


def _by_reference(mailbox_id: int, incoming: _Incoming, links: _Links) -> ThreadPlacement | None:
    locked = threads_lock(mailbox_id=mailbox_id, thread_ids=[links.primary, *links.others])
    if any(i not in locked for i in [links.primary, *links.others]):
        return None
    primary = locked[links.primary]
    mergeable = [] if primary.is_manual else [locked[i] for i in links.others if not locked[i].is_manual]
    if not mergeable:
        return ThreadPlacement(primary, REASON_REFERENCE, incoming.subject.normalized)
    # The biggest thread survives, so the fewest rows move.
    survivor = max([primary, *mergeable], key=lambda t: (t.message_count, -t.pk))
    absorbed = tuple(t.pk for t in [primary, *mergeable] if t.pk != survivor.pk)
    thread_absorb(mailbox_id=mailbox_id, into_id=survivor.pk, thread_ids=list(absorbed))
    return ThreadPlacement(survivor, REASON_REFERENCE, incoming.subject.normalized, absorbed)


def _by_branch(mailbox_id: int, incoming: _Incoming, parent: _KnownId) -> ThreadPlacement | None:
    """Private replies to bulk mail: one conversation per correspondent (the parent's id lock is held).

    The branch is keyed in the Message-ID map as "<bulk Message-ID> <correspondent>", so merges and
    deletions carry it along with the thread's ids.
    """
    key = f"{parent.message_id} {_private_party(incoming, parent.sender)}"[:MAX_ID_LENGTH]
    branch = known_ids_fetch(mailbox_id=mailbox_id, message_ids=[key]).get(key)
    if branch is None:
        thread = thread_create(mailbox_id=mailbox_id, subject=incoming.subject_text, list_id=incoming.list_id)
        _ids_insert([ThreadMessageId(mailbox_id=mailbox_id, message_id=key, thread=thread)])
        return ThreadPlacement(thread, REASON_NEW, incoming.subject.normalized)
    branch_thread_id = _KnownId(*branch).thread_id
    locked = threads_lock(mailbox_id=mailbox_id, thread_ids=[branch_thread_id])
    if branch_thread_id not in locked:
        return None
    return ThreadPlacement(locked[branch_thread_id], REASON_REFERENCE, incoming.subject.normalized)


def _by_subject(mailbox_id: int, incoming: _Incoming) -> ThreadPlacement | None:
    """A reply without usable headers: the nearest-in-time thread passing every subject guardrail."""
    if not _may_join_by_subject(incoming):
        return None
    eligible = _subject_candidates(mailbox_id, incoming)
    if not eligible:
        return None
    best = min(eligible, key=lambda t: (_distance(t, incoming.date), -t.last_message_at.timestamp()))
    locked = threads_lock(mailbox_id=mailbox_id, thread_ids=[best.pk])
    if best.pk not in locked:
        return _new(mailbox_id, incoming)
    return ThreadPlacement(locked[best.pk], REASON_SUBJECT, incoming.subject.normalized)


def _may_join_by_subject(incoming: _Incoming) -> bool:
    """A reply or forward (by its prefix) with a telling subject and no threading headers at all."""
    return incoming.subject.is_reply and not incoming.subject.is_generic and not incoming.ancestors


def _subject_candidates(mailbox_id: int, incoming: _Incoming, *, fragments_only: bool = False) -> list[Thread]:
    """Threads of the same subject, active near the message's date, passing every subject guardrail;
    of those, only the ones under the most specific of the message's subject keys."""
    keys = incoming.subject.keys
    if not thread_rows_readable(mailbox_id=mailbox_id, subject_keys=keys, fragments_only=fragments_only):
        return []
    candidates = Thread.objects.filter(
        mailbox_id=mailbox_id, normalized_subject__in=keys, last_message_at__gte=incoming.date - WINDOW
    )
    if fragments_only:
        candidates = candidates.filter(is_fragment=True, is_manual=False)
    candidates = candidates.order_by("last_message_at").only(*_CANDIDATE_FIELDS)[:SUBJECT_CANDIDATES]
    found = [t for t in candidates if _subject_match(t, incoming)]
    best_key = min((keys.index(t.normalized_subject) for t in found), default=0)
    return [t for t in found if keys.index(t.normalized_subject) == best_key]


_CANDIDATE_FIELDS = (
    "id",
    "mailbox_id",
    "normalized_subject",
    "list_id",
    "message_count",
    "first_message_at",
    "last_message_at",
    "correspondents",
)


def _subject_match(thread: Thread, incoming: _Incoming) -> bool:
    return (
        thread.first_message_at is not None
        and thread.first_message_at <= incoming.date + WINDOW
        and (not incoming.list_id or thread.list_id == incoming.list_id)
        and thread.message_count < SUBJECT_JOIN_MAX_MESSAGES
        and not incoming.parties.isdisjoint(thread.correspondents)
    )


def _distance(thread: Thread, date: datetime) -> timedelta:
    if date < thread.first_message_at:
        return thread.first_message_at - date
    return max(date - thread.last_message_at, timedelta(0))


def _new(mailbox_id: int, incoming: _Incoming) -> ThreadPlacement:
    """A new thread. A reply that lost its headers and found no thread starts a fragment; any other new
    thread adopts the fragments that would have joined it, had it arrived first."""
    fragment = _may_join_by_subject(incoming)
    thread = thread_create(
        mailbox_id=mailbox_id, subject=incoming.subject_text, list_id=incoming.list_id, is_fragment=fragment
    )
    adopted = () if fragment else _fragments_adopt(mailbox_id, incoming, thread)
    return ThreadPlacement(thread, REASON_NEW, incoming.subject.normalized, adopted)


def _fragments_adopt(mailbox_id: int, incoming: _Incoming, thread: Thread) -> tuple[int, ...]:
    if incoming.subject.is_generic:
        return ()
    fragments = [t.pk for t in _subject_candidates(mailbox_id, incoming, fragments_only=True)]
    if not fragments:
        return ()
    adopted = tuple(sorted(threads_lock(mailbox_id=mailbox_id, thread_ids=fragments)))
    thread_absorb(mailbox_id=mailbox_id, into_id=thread.pk, thread_ids=list(adopted))
    return adopted


def _record_message_ids(mailbox_id: int, placement: ThreadPlacement, incoming: _Incoming, links: _Links) -> None:
    thread = placement.thread
    rows = [ThreadMessageId(mailbox_id=mailbox_id, message_id=i, thread=thread) for i in links.followed]
    own = {"seen": True, "sender": incoming.sender, "is_bulk": incoming.is_bulk}
    own_row = ThreadMessageId(mailbox_id=mailbox_id, message_id=incoming.message_id, thread=thread, **own)
    batch = batch_current()
    if batch is not None:
        batch.ids_record(rows, own=own_row, own_known=links.own_known)
        return
    _ids_insert([*rows, own_row])
    if links.own_known:  # a placeholder until now: the message has arrived
        ThreadMessageId.objects.filter(mailbox_id=mailbox_id, message_id=incoming.message_id, seen=False).update(**own)


def _ids_insert(rows: list[ThreadMessageId]) -> None:
    """Map ids not mapped yet (an id already mapped keeps its thread)."""
    batch = batch_current()
    if batch is not None:
        for row in rows:
            batch.ids_record([], own=row, own_known=False)
        return
    ThreadMessageId.objects.bulk_create(rows, ignore_conflicts=True)


def placements_prepare(*, mailbox_id: int, messages: list[tuple[str, str, list[str], str, str]]) -> None:
    """Before a batch places ``messages`` (message_id, in_reply_to, references, subject, list_id) into
    a mailbox: take their conversation locks and read their ids' map rows, a few statements in all."""
    ids: set[str] = set()
    subject_keys: set[str] = set()
    for message_id, in_reply_to, references, subject, list_id in messages:
        ids.update([message_id, *_ancestor_ids(message_id=message_id, in_reply_to=in_reply_to, references=references)])
        analysed = subject_analyse(subject, list_id=list_id)
        subject_keys.update([] if analysed.is_generic else analysed.keys)
    conversation_lock(mailbox_id=mailbox_id, message_ids=ids, subject_keys=subject_keys)
    batch = batch_current()
    if batch is not None:
        batch.prepare(mailbox_id=mailbox_id, message_ids=ids, subject_keys=subject_keys)
