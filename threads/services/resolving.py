"""The resolver: which thread a new message belongs to, from its headers and participants alone.

In order:
1. **Headers.** The message's own Message-ID (replies that came first may have named it), then
   In-Reply-To and References, nearest ancestor first. Every id is mapped to a thread, those only
   referenced so far included, so a late parent finds the replies that came before it; when the
   ids connect several threads, they merge. Junk ids are ignored; membership has no parent links, so no
   loop can form.
2. **Subject.** A reply that lost its References (its subject has a reply or forward prefix; at
   most an In-Reply-To naming a parent the mailbox never saw) joins a thread with the same
   normalised subject when their participants overlap and the thread was active within ``WINDOW``
   of the message's date.
3. **Guardrails.** Generic subjects never join by subject; a References header naming ids the
   candidate does not hold (none of them known, or they would have placed the message) blocks a
   subject join (Gmail's rule); a thread of ``SUBJECT_JOIN_MAX_MESSAGES`` or more stops growing by
   subject; list mail joins only threads of its list; private replies to bulk mail make one
   conversation per correspondent; threads the user arranged are never merged automatically.
4. **Fallback.** A new thread. A reply without headers that found no thread starts a *fragment*;
   the next new thread of its subject and correspondents adopts it, as the reply would have joined
   that thread had it arrived after it.
5. **Subject joins are provisional.** The ids a subject join (or a fragment) brings into a thread
   carry the joining message's id as ``subject_anchor``, as do replies placed only through them.
   Later headers judge the guess (``_subject_joins_judge``): a chain through an anchored id that also
   reaches ids its thread holds confirms it; one that reaches another thread moves the anchored
   messages there instead of merging the two threads; one whose ancestry lies wholly outside the
   thread (unknown ids above the anchored ones, or the unknown parent arriving as a conversation's
   first message) moves them to a thread of their own.
"""

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from threads.models import Thread, ThreadMessageId
from threads.services.batching import batch_current, known_ids_fetch
from threads.services.locking import conversation_lock, locked_thread, threads_lock
from threads.services.reading import Candidate, PlacementRead, SubjectQuery, placement_read
from threads.services.restructuring import (
    thread_absorb,
    thread_build,
    thread_create,
    thread_insert_params,
    thread_insert_sql_text,
    thread_inserted,
)
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
    # Message-IDs of messages whose subject join the headers contradicted: the caller moves them into
    # ``thread`` and recounts the threads they leave (their ids are mapped to ``thread`` already).
    moved_message_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Incoming:
    message_id: str
    ancestors: tuple[str, ...]  # nearest first
    has_references: bool  # a References header names an ancestor (In-Reply-To alone is no chain)
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
    subject_anchor: str


@dataclass
class _SubjectJoins:
    """What the message's headers say about the unconfirmed subject joins they reach (by anchor)."""

    confirmed: set[str] = field(default_factory=set)  # their thread is the message's: now certain
    moved: set[str] = field(default_factory=set)  # their ids and messages move to the message's thread
    inherited: str = ""  # the message joins through them only: its ids take this anchor
    outside: bool = False  # the moved ones go to a new thread: their ancestry is no thread here


@dataclass(frozen=True)
class _Unwritten:
    """A placement whose thread row is written with the message's ids, in one statement: a new thread
    inserted, or (``lock``) the thread it joins by subject locked, gone meanwhile: look again."""

    placement: ThreadPlacement
    lock: bool


@dataclass
class _Links:
    primary: int | None = None  # thread of the nearest known id, the message's own first
    others: list[int] = field(default_factory=list)  # further threads the ids connect: merged
    bulk_parent: _KnownId | None = None  # the nearest known id: bulk mail privately replied to
    followed: list[str] = field(default_factory=list)  # ancestor ids up to any bulk parent
    own_known: bool = False  # the message's own id was mapped already (named by earlier replies)
    joins: _SubjectJoins = field(default_factory=_SubjectJoins)
    moved_from: set[int] = field(default_factory=set)  # threads holding the subject joins that move

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
        has_references=any(i != message_id and _is_message_id(i) for i in references),
        subject_text=subject,
        subject=subject_analyse(subject, list_id=list_id),
        list_id=list_id,
        date=date or timezone.now(),
        sender=sender,
        recipients=frozenset(recipients),
        is_bulk=is_bulk,
    )
    for _ in range(PLACEMENT_ATTEMPTS):
        read = _read(mailbox_id, incoming)
        links = _links(incoming, read)
        placement = _placement(mailbox_id, incoming, links, read)
        if placement is not None:
            placement = _record_message_ids(mailbox_id, placement, incoming, links)
        if placement is not None:
            return placement
    raise RuntimeError(f"threads kept changing while placing {message_id} in mailbox {mailbox_id}")


def _read(mailbox_id: int, incoming: _Incoming) -> PlacementRead:
    """Lock the conversation, read the map rows of the message's ids and lock their threads; and read
    the subject candidates the message may need: every thread of its subject when it may join by
    subject, else the fragments a new thread of it would adopt."""
    subject_keys = [] if incoming.subject.is_generic else incoming.subject.keys
    return placement_read(
        mailbox_id=mailbox_id,
        message_ids=[incoming.message_id, *incoming.ancestors],
        lock_subject_keys=subject_keys,
        subject_query=_subject_query(incoming, fragments_only=not _may_join_by_subject(incoming))
        if subject_keys
        else None,
    )


def _subject_query(incoming: _Incoming, *, fragments_only: bool) -> SubjectQuery:
    return SubjectQuery(
        keys=incoming.subject.keys,
        since=incoming.date - WINDOW,
        fragments_only=fragments_only,
        limit=SUBJECT_CANDIDATES,
    )


def _ancestor_ids(*, message_id: str, in_reply_to: str, references: list[str]) -> tuple[str, ...]:
    """Valid ids other than the message's own, nearest first: In-Reply-To, then References last to first."""
    ordered = [in_reply_to, *reversed(references)]
    ancestors = [i for i in dict.fromkeys(ordered) if i != message_id and _is_message_id(i)]
    if len(ancestors) > MAX_ANCESTORS:
        ancestors = [*ancestors[: MAX_ANCESTORS - 1], ancestors[-1]]  # the nearest ones and the root
    return tuple(ancestors)


def _is_message_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH and _VALID_ID.match(value) is not None


def _links(incoming: _Incoming, read: PlacementRead) -> _Links:
    """Which threads the message's ids lead to. Ids beyond bulk mail are not followed: they would
    fuse every correspondent's conversation about it into one."""
    ordered = [incoming.message_id, *incoming.ancestors]
    rows = {i: _KnownId(*row) for i, row in read.known.items()}
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
    if links.bulk_parent is None:
        found = _subject_joins_judge(incoming, rows, links, found)
    return links.settle(found)


def _subject_joins_judge(
    incoming: _Incoming, rows: dict[str, _KnownId], links: _Links, found: list[tuple[str, int]]
) -> list[tuple[str, int]]:
    """Judge the unconfirmed subject joins the message's ids reach; return the known ids that decide its
    thread. Ids in a thread by header evidence are *firm*; anchored ids stand in only when no firm one
    is known, as a reply to a reply that joined by subject joins where that one is."""
    anchored = {i: rows[i] for i, _ in found if rows[i].subject_anchor}
    if not anchored:
        return found
    firm = [(i, thread) for i, thread in found if i not in anchored]
    firm_threads = {thread for _, thread in firm}
    joins = links.joins
    if firm:
        for row in anchored.values():
            target = joins.confirmed if row.thread_id in firm_threads else joins.moved
            target.add(row.subject_anchor)
    elif _ancestry_outside(incoming, rows, anchored):
        joins.outside = True
        joins.moved = {row.subject_anchor for row in anchored.values()}
    else:
        nearest = anchored[found[0][0]]
        joins.inherited = nearest.subject_anchor
        joins.moved = {row.subject_anchor for row in anchored.values() if row.thread_id != nearest.thread_id}
        firm = [found[0]]
    links.moved_from = {row.thread_id for row in anchored.values() if row.subject_anchor in joins.moved}
    return firm


def _ancestry_outside(incoming: _Incoming, rows: dict[str, _KnownId], anchored: dict[str, _KnownId]) -> bool:
    """Headers that reach only subject-joined ids, and show that their conversation is none of the
    thread's: ids above them (their own ancestors) the mailbox does not know, or, when the message is
    the unknown parent itself, no reply mark and no parent at all (a conversation's first message)."""
    ordered = [incoming.message_id, *incoming.ancestors]
    farthest = max(ordered.index(i) for i in anchored)
    if incoming.has_references and any(i not in rows for i in ordered[farthest + 1 :]):
        return True
    return incoming.message_id in anchored and not incoming.ancestors and not incoming.subject.is_reply


def _private_party(incoming: _Incoming, bulk_sender: str) -> str:
    """The one correspondent a reply to bulk mail is exchanged with, or "" if it is not private."""
    if incoming.list_id:
        return ""
    parties = incoming.parties - {bulk_sender}
    return next(iter(parties)) if len(parties) == 1 else ""


def _placement(
    mailbox_id: int, incoming: _Incoming, links: _Links, read: PlacementRead
) -> ThreadPlacement | _Unwritten | None:
    """``None`` when a thread found was merged away by a concurrent writer: look again."""
    if links.bulk_parent is not None:
        return _by_branch(mailbox_id, incoming, links.bulk_parent)
    if links.primary is not None:
        return _by_reference(mailbox_id, incoming, links, read)
    if links.joins.outside:
        return _apart_with_subject_joins(mailbox_id, incoming, links, read)
    return _by_subject(mailbox_id, incoming, read) or _new(mailbox_id, incoming, read, deferred=True)


def _threads_lock(mailbox_id: int, thread_ids: list[int], read: PlacementRead) -> dict[int, Thread]:
    """The threads, locked: as the read locked them when it has them all, else locked now."""
    if all(i in read.locked for i in thread_ids):
        return {i: read.locked[i] for i in sorted(set(thread_ids))}
    return threads_lock(mailbox_id=mailbox_id, thread_ids=thread_ids)


def _by_reference(mailbox_id: int, incoming: _Incoming, links: _Links, read: PlacementRead) -> ThreadPlacement | None:
    wanted = [links.primary, *links.others, *links.moved_from]
    locked = _threads_lock(mailbox_id, wanted, read)
    if any(i not in locked for i in wanted):
        return None
    primary = locked[links.primary]
    mergeable = [] if primary.is_manual else [locked[i] for i in links.others if not locked[i].is_manual]
    placement = ThreadPlacement(primary, REASON_REFERENCE, incoming.subject.normalized)
    if mergeable:
        # The biggest thread survives, so the fewest rows move.
        survivor = max([primary, *mergeable], key=lambda t: (t.message_count, -t.pk))
        absorbed = tuple(t.pk for t in [primary, *mergeable] if t.pk != survivor.pk)
        thread_absorb(mailbox_id=mailbox_id, into_id=survivor.pk, thread_ids=list(absorbed))
        placement = ThreadPlacement(survivor, REASON_REFERENCE, incoming.subject.normalized, absorbed)
    return _subject_joins_apply(mailbox_id, placement, links.joins)


def _apart_with_subject_joins(
    mailbox_id: int, incoming: _Incoming, links: _Links, read: PlacementRead
) -> ThreadPlacement | None:
    """The message's headers show that the subject joins they reach were wrong and name no thread here:
    a new thread for the message and the messages of those joins."""
    locked = _threads_lock(mailbox_id, sorted(links.moved_from), read)
    if any(i not in locked for i in links.moved_from):
        return None
    return _subject_joins_apply(mailbox_id, _new(mailbox_id, incoming, read), links.joins)


def _subject_joins_apply(mailbox_id: int, placement: ThreadPlacement, joins: _SubjectJoins) -> ThreadPlacement:
    """Confirm the subject joins the headers confirmed; move the contradicted ones (their ids, and the
    ids of replies placed through them) into the placement's thread. Their threads are locked."""
    if not joins.confirmed and not joins.moved:
        return placement
    batch = batch_current()
    if batch is not None:
        batch.flush()  # the rows are found by anchor in the database: it must hold the batch's
    ids = ThreadMessageId.objects.filter(mailbox_id=mailbox_id)
    if joins.confirmed:
        ids.filter(subject_anchor__in=sorted(joins.confirmed)).update(subject_anchor="")
    seen: tuple[str, ...] = ()
    if joins.moved:
        moved = ids.filter(subject_anchor__in=sorted(joins.moved))
        seen = tuple(sorted(moved.filter(seen=True).values_list("message_id", flat=True)))
        moved.update(thread_id=placement.thread.pk, subject_anchor=joins.inherited)
    if batch is not None:
        batch.subject_joins_settled(
            mailbox_id=mailbox_id,
            confirmed=joins.confirmed,
            moved=joins.moved,
            into_id=placement.thread.pk,
            inherited=joins.inherited,
        )
    return replace(placement, moved_message_ids=seen) if joins.moved else placement


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


def _by_subject(mailbox_id: int, incoming: _Incoming, read: PlacementRead) -> ThreadPlacement | _Unwritten | None:
    """A reply without usable headers: the nearest-in-time thread passing every subject guardrail."""
    if not _may_join_by_subject(incoming):
        return None
    eligible = _subject_candidates(mailbox_id, incoming, read)
    if not eligible:
        return None
    best = min(eligible, key=lambda t: (_distance(t, incoming.date), -t.last_message_at.timestamp()))
    if batch_current() is None:  # locked as the message's ids are recorded
        thread = locked_thread(mailbox_id, (best.pk, False, False, best.message_count))
        return _Unwritten(ThreadPlacement(thread, REASON_SUBJECT, incoming.subject.normalized), lock=True)
    locked = threads_lock(mailbox_id=mailbox_id, thread_ids=[best.pk])
    if best.pk not in locked:
        return _new(mailbox_id, incoming, read, deferred=True)
    return ThreadPlacement(locked[best.pk], REASON_SUBJECT, incoming.subject.normalized)


def _may_join_by_subject(incoming: _Incoming) -> bool:
    """A reply or forward (by its prefix) with a telling subject and no References chain.

    An In-Reply-To alone is no such chain when it names a parent this mailbox never saw (a known one
    would have placed the message): a client that writes no References, a reply to a message that
    went to others only. The missing parent says nothing against the conversation the subject and
    the people point to; if later headers place that parent elsewhere, the join is undone."""
    return incoming.subject.is_reply and not incoming.subject.is_generic and not incoming.has_references


# Raw SQL for the same reason as the Message-ID look-up: an index range scan on thread_mailbox_subject
# (or the small thread_mailbox_fragment) whose ORM query building cost several times the scan. The
# threads a batch holds are left out: the batch answers for them (``_held_candidates``).
_CANDIDATES_SQL = (
    "SELECT id, normalized_subject, list_id, message_count, first_message_at, last_message_at, "
    "ARRAY(SELECT jsonb_array_elements_text(correspondents)) "
    "FROM threads_thread WHERE mailbox_id = %s AND normalized_subject = ANY(%s) AND last_message_at >= %s "
    "AND id <> ALL(%s::bigint[]){extra} ORDER BY last_message_at, id LIMIT %s"
)
_ANY_CANDIDATE_SQL = _CANDIDATES_SQL.format(extra="")
_FRAGMENT_CANDIDATE_SQL = _CANDIDATES_SQL.format(extra=" AND is_fragment AND NOT is_manual")


def _subject_candidates(
    mailbox_id: int, incoming: _Incoming, read: PlacementRead, *, fragments_only: bool = False
) -> list[Candidate]:
    """Threads of the same subject, active near the message's date, passing every subject guardrail;
    of those, only the ones under the most specific of the message's subject keys."""
    keys = incoming.subject.keys
    candidates = read.candidates_for(_subject_query(incoming, fragments_only=fragments_only))
    if candidates is None:
        candidates = _subject_candidates_fetch(mailbox_id, incoming, fragments_only=fragments_only)
    found = [t for t in candidates if _subject_match(t, incoming)]
    best_key = min((keys.index(t.normalized_subject) for t in found), default=0)
    return [t for t in found if keys.index(t.normalized_subject) == best_key]


def _subject_candidates_fetch(mailbox_id: int, incoming: _Incoming, *, fragments_only: bool) -> list[Candidate]:
    """The query of ``_CANDIDATES_SQL``. In a batch, its threads' rows in the database may be stale or
    missing: the database answers for the others and the batch's memory for those, with no flush,
    the same threads a flush and a read would find."""
    keys = incoming.subject.keys
    since = incoming.date - WINDOW
    batch = batch_current()
    if batch is not None and fragments_only and not batch.fragments_possible(mailbox_id, keys):
        return []
    held = batch.threads_held(mailbox_id) if batch is not None else []
    sql = _FRAGMENT_CANDIDATE_SQL if fragments_only else _ANY_CANDIDATE_SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, [mailbox_id, keys, since, [t.pk for t in held], SUBJECT_CANDIDATES])
        found = [Candidate(*row) for row in cursor.fetchall()]
    if not held:
        return found
    found += _held_candidates(held, keys=keys, since=since, fragments_only=fragments_only)
    return sorted(found, key=lambda t: (t.last_message_at, t.pk))[:SUBJECT_CANDIDATES]


def _held_candidates(
    threads: list[Thread], *, keys: list[str], since: datetime, fragments_only: bool
) -> list[Candidate]:
    """The threads among ``threads`` (current in memory) that ``_CANDIDATES_SQL`` selects."""
    return [
        Candidate(
            t.pk,
            t.normalized_subject,
            t.list_id,
            t.message_count,
            t.first_message_at,
            t.last_message_at,
            list(t.correspondents),
        )
        for t in threads
        if t.normalized_subject in keys
        and t.last_message_at is not None
        and t.last_message_at >= since
        and (not fragments_only or (t.is_fragment and not t.is_manual))
    ]


def _subject_match(thread: Candidate, incoming: _Incoming) -> bool:
    return (
        thread.first_message_at is not None
        and thread.first_message_at <= incoming.date + WINDOW
        and (not incoming.list_id or thread.list_id == incoming.list_id)
        and thread.message_count < SUBJECT_JOIN_MAX_MESSAGES
        and not incoming.parties.isdisjoint(thread.correspondents)
    )


def _distance(thread: Candidate, date: datetime) -> timedelta:
    if date < thread.first_message_at:
        return thread.first_message_at - date
    return max(date - thread.last_message_at, timedelta(0))


def _new(
    mailbox_id: int, incoming: _Incoming, read: PlacementRead, *, deferred: bool = False
) -> ThreadPlacement | _Unwritten:
    """A new thread. A reply that lost its headers and found no thread starts a fragment; any other new
    thread adopts the fragments that would have joined it, had it arrived first.

    ``deferred``: nothing else in the placement needs the thread's row, so when it adopts nothing
    (outside a batch) it is inserted later, in one statement with the message's ids (its id is then
    unset until then)."""
    fragment = _may_join_by_subject(incoming)
    fragments = [] if fragment else _fragments_found(mailbox_id, incoming, read)
    if deferred and not fragments and batch_current() is None:
        thread = thread_build(
            mailbox_id=mailbox_id, subject=incoming.subject_text, list_id=incoming.list_id, is_fragment=fragment
        )
        return _Unwritten(ThreadPlacement(thread, REASON_NEW, incoming.subject.normalized), lock=False)
    thread = thread_create(
        mailbox_id=mailbox_id, subject=incoming.subject_text, list_id=incoming.list_id, is_fragment=fragment
    )
    adopted = _fragments_adopt(mailbox_id, thread, fragments) if fragments else ()
    return ThreadPlacement(thread, REASON_NEW, incoming.subject.normalized, adopted)


def _fragments_found(mailbox_id: int, incoming: _Incoming, read: PlacementRead) -> list[int]:
    """The fragments a new thread of the message adopts."""
    if incoming.subject.is_generic:
        return []
    return [t.pk for t in _subject_candidates(mailbox_id, incoming, read, fragments_only=True)]


def _fragments_adopt(mailbox_id: int, thread: Thread, fragments: list[int]) -> tuple[int, ...]:
    adopted = tuple(sorted(threads_lock(mailbox_id=mailbox_id, thread_ids=fragments)))
    thread_absorb(mailbox_id=mailbox_id, into_id=thread.pk, thread_ids=list(adopted))
    return adopted


# One statement for the ids the message references and its own: a placeholder of its own id (named by
# replies that came first) becomes a seen id; everything else already mapped stays as it is.
_RECORD_IDS_SQL = (
    "INSERT INTO threads_threadmessageid (mailbox_id, message_id, thread_id, seen, sender, is_bulk, subject_anchor) "
    "SELECT %(mailbox)s, i, {thread}, false, '', false, %(anchor)s FROM {source}unnest(%(followed)s::text[]) AS i "
    "UNION ALL SELECT %(mailbox)s, %(own)s, {thread}, true, %(sender)s, %(bulk)s, %(anchor)s{own_source} "
    "ON CONFLICT (mailbox_id, message_id) DO UPDATE SET seen = true, sender = EXCLUDED.sender, "
    "is_bulk = EXCLUDED.is_bulk WHERE EXCLUDED.seen AND NOT threads_threadmessageid.seen"
)
_RECORD_IDS_IN_THREAD_SQL = _RECORD_IDS_SQL.format(thread="%(thread)s", source="", own_source="")
# The thread row and the ids in one statement: a new thread inserted (the map rows' foreign key is
# checked at the statement's end, when it exists), or the thread joined locked (gone: nothing recorded).
_RECORD_IDS_FROM_SQL = "WITH thread AS ({thread}), recorded AS ({record}) SELECT * FROM thread".format(  # noqa: S608 - constant SQL
    thread="{thread}", record=_RECORD_IDS_SQL.format(thread="thread.id", source="thread, ", own_source=" FROM thread")
)
_NEW_THREAD_SQL = _RECORD_IDS_FROM_SQL.format(thread=thread_insert_sql_text())
_JOINED_THREAD_SQL = _RECORD_IDS_FROM_SQL.format(
    thread="SELECT id, is_manual, is_fragment, message_count FROM threads_thread "
    "WHERE mailbox_id = %(mailbox)s AND id = %(thread)s FOR UPDATE"
)


def _record_message_ids(
    mailbox_id: int, placement: ThreadPlacement | _Unwritten, incoming: _Incoming, links: _Links
) -> ThreadPlacement | None:
    """Map the message's ids (those it followed, and its own) to its thread; write an unwritten
    placement's thread with them. ``None`` when the thread it joins by subject is gone: look again."""
    unwritten = placement if isinstance(placement, _Unwritten) else None
    placement = unwritten.placement if unwritten else placement
    anchor = _subject_anchor_of(placement, incoming, links)
    batch = batch_current()
    if batch is not None:
        _batch_ids_record(mailbox_id, placement.thread, incoming, links, anchor)
        return placement
    params = {
        "mailbox": mailbox_id,
        "thread": placement.thread.pk,
        "anchor": anchor,
        "followed": links.followed,
        "own": incoming.message_id,
        "sender": incoming.sender,
        "bulk": incoming.is_bulk,
    }
    with connection.cursor() as cursor:
        if unwritten is None:
            cursor.execute(_RECORD_IDS_IN_THREAD_SQL, params)
            return placement
        if not unwritten.lock:
            cursor.execute(_NEW_THREAD_SQL, params | thread_insert_params(placement.thread))
            thread_inserted(placement.thread, cursor.fetchone()[0])
            return placement
        cursor.execute(_JOINED_THREAD_SQL, params)
        row = cursor.fetchone()
    return None if row is None else replace(placement, thread=locked_thread(mailbox_id, row))


def _batch_ids_record(mailbox_id: int, thread: Thread, incoming: _Incoming, links: _Links, anchor: str) -> None:
    rows = [
        ThreadMessageId(mailbox_id=mailbox_id, message_id=i, thread=thread, subject_anchor=anchor)
        for i in links.followed
    ]
    own = ThreadMessageId(
        mailbox_id=mailbox_id,
        message_id=incoming.message_id,
        thread=thread,
        seen=True,
        sender=incoming.sender,
        is_bulk=incoming.is_bulk,
        subject_anchor=anchor,
    )
    batch_current().ids_record(rows, own=own, own_known=links.own_known)


def _subject_anchor_of(placement: ThreadPlacement, incoming: _Incoming, links: _Links) -> str:
    """The anchor the message's new ids carry: its own id when it joined by subject or started a
    fragment (a guess either way), the anchor it reached when it joined only through subject-joined
    ids, else none (header evidence)."""
    if placement.reason == REASON_SUBJECT or (placement.reason == REASON_NEW and placement.thread.is_fragment):
        return incoming.message_id
    return links.joins.inherited


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
