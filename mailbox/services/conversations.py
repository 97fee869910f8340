"""Conversations in a mailbox: placing a message in its thread, the user's merges, splits and moves,
and the recount of a thread's summary and label index from its messages.

The ``threads`` app resolves from plain values; this module turns a mailbox's message into them
(who it is exchanged with, whether it is bulk mail) and does what needs the messages themselves.
Structural changes (merge, split, move) recount the threads they touch, under their row locks,
so the work is bounded by the size of those threads, never of the mailbox.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Value, When

from mailbox.live import tab_source_tag
from mailbox.models import Alias, Mailbox, MergedThread, Message, MessageLabel, Participant, ThreadLabel
from mailbox.parsing import ParsedMessage
from mailsite.events import EventSpec, domain_events_record
from mailsite.models import DomainEvent
from mailsite.realtime import mailbox_publish_on_commit
from threads.models import Thread
from threads.services import (
    ThreadPlacement,
    ThreadSummary,
    batch_current,
    correspondents_capped,
    participants_add,
    thread_absorb,
    thread_create,
    thread_message_ids_move,
    thread_place_message,
    thread_subject_joins_confirm,
    thread_summary_set,
    threads_delete,
    threads_lock,
    threads_mark_manual,
)

# A message to this many recipients or more (or sent by a campaign) is bulk mail: private replies
# to it from different people are separate conversations.
BULK_RECIPIENTS = 10
CORRESPONDENT_ROLES = ("from", "to", "cc", "bcc", "reply_to")
_RECIPIENT_ROLES = ("to", "cc", "bcc")
LOCK_ATTEMPTS = 3


@dataclass(frozen=True)
class Correspondence:
    """Who a message is exchanged with, seen from the mailbox: the resolver's participant input."""

    sender: str  # "" when the mailbox's own address sent it
    others: frozenset[str]  # every other address it was from or to, the mailbox's own excepted
    is_bulk: bool

    @property
    def summary_addresses(self) -> tuple[str, ...]:
        """What the message adds to its thread's correspondents: bulk mail only its sender."""
        parties = {self.sender} if self.is_bulk else {self.sender, *self.others}
        return tuple(sorted(parties - {""}))


@dataclass(frozen=True)
class ThreadDrift:
    """How a stored thread differs from its recount: summary field names, "labels" or "empty"."""

    thread_id: int
    mailbox_id: int
    fields: tuple[str, ...]


@dataclass(frozen=True)
class ThreadState:
    """A thread's summary and label index as its messages say they should be."""

    summary: ThreadSummary
    labels: dict[int, tuple[int, int]] = field(default_factory=dict)  # label id → (messages, unread)


def mailbox_own_addresses(*, mailbox_id: int) -> frozenset[str]:
    """The mailbox's primary address and its aliases."""
    own = set(Mailbox.objects.filter(pk=mailbox_id).values_list("address", flat=True))
    own.update(Alias.objects.filter(mailbox_id=mailbox_id).values_list("address", flat=True))
    return frozenset(own)


def correspondence_of(
    *, sender: str, addresses: dict[str, list[str]], list_id: str, source_tag: str, own: frozenset[str]
) -> Correspondence:
    """``addresses`` maps a role (from, to, cc, …) to its addresses, as parsed or as stored."""
    recipients = sum(len(addresses.get(role, [])) for role in _RECIPIENT_ROLES)
    everyone = {a for role in CORRESPONDENT_ROLES for a in addresses.get(role, [])}
    return Correspondence(
        sender="" if sender in own else sender,
        others=frozenset(everyone - own - {sender, ""}),
        is_bulk=not list_id and (source_tag.startswith("campaign") or recipients >= BULK_RECIPIENTS),
    )


def message_correspondence(*, mailbox: Mailbox, parsed: ParsedMessage, source_tag: str) -> Correspondence:
    return correspondence_of(
        sender=parsed.sender.address,
        addresses={role: [a.address for a in found] for role, found in parsed.addresses.items()},
        list_id=parsed.list_id,
        source_tag=source_tag,
        own=frozenset({mailbox.address, *Alias.objects.filter(mailbox=mailbox).values_list("address", flat=True)}),
    )


@transaction.atomic(savepoint=False)
def message_thread_resolve(
    *, mailbox: Mailbox, parsed: ParsedMessage, correspondence: Correspondence
) -> ThreadPlacement:
    """Place a message being delivered; when its ids join threads together, complete the merge."""
    placement = thread_place_message(
        mailbox_id=mailbox.id,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        subject=parsed.subject,
        list_id=parsed.list_id,
        date=parsed.date,
        sender=correspondence.sender,
        recipients=correspondence.others,
        is_bulk=correspondence.is_bulk,
    )
    if placement.absorbed_thread_ids:
        _threads_fold(mailbox.id, into_id=placement.thread.pk, absorbed=list(placement.absorbed_thread_ids))
    if placement.moved_message_ids:
        _subject_joins_undo(mailbox.id, into_id=placement.thread.pk, header_ids=list(placement.moved_message_ids))
    if placement.absorbed_thread_ids or placement.moved_message_ids:
        placement.thread.refresh_from_db()
    return placement


def _subject_joins_undo(mailbox_id: int, *, into_id: int, header_ids: list[str]) -> None:
    """Move messages whose subject join later headers contradicted into ``into_id`` (the resolver has
    locked the threads and moved their ids); recount both sides, one event per thread touched."""
    batch = batch_current()
    if batch is not None:
        batch.flush()  # the messages are read and recounted in the database: it must hold the batch's
    messages = Message.objects.filter(mailbox_id=mailbox_id, message_id__in=header_ids).exclude(thread_id=into_id)
    left: dict[int, list[int]] = defaultdict(list)
    for pk, source in messages.values_list("id", "thread_id").order_by("id"):
        left[source].append(pk)
    if not left:
        return
    messages.update(thread_id=into_id, thread_reason=Message.ThreadReason.REFERENCE)
    emptied = thread_states_apply(mailbox_id=mailbox_id, thread_ids=[into_id, *left])
    arrived = sorted(pk for pks in left.values() for pk in pks)
    by = "resolver"
    changes = [ThreadChange(into_id, {"message_ids": arrived, "from_thread_ids": sorted(left), "by": by})]
    changes += [
        ThreadChange(source, {"message_ids": pks, "to_thread_id": into_id, "by": by}, source in emptied, into_id)
        for source, pks in left.items()
    ]
    thread_changes_record(mailbox_id=mailbox_id, event_type=DomainEvent.Type.MESSAGES_MOVED, changes=changes)


def _threads_fold(mailbox_id: int, *, into_id: int, absorbed: list[int], manual: bool = False) -> None:
    """Move the absorbed threads' messages into ``into_id``, delete them, recount ``into_id``.
    The threads are locked by the caller."""
    moved = Message.objects.filter(mailbox_id=mailbox_id, thread_id__in=absorbed)
    moved.update(thread_id=into_id, **({"thread_reason": Message.ThreadReason.MANUAL} if manual else {}))
    thread_absorb(mailbox_id=mailbox_id, into_id=into_id, thread_ids=absorbed)
    threads_delete(mailbox_id=mailbox_id, thread_ids=absorbed)
    thread_states_apply(mailbox_id=mailbox_id, thread_ids=[into_id])
    by = "user" if manual else "resolver"
    changes = [ThreadChange(into_id, {"absorbed": sorted(absorbed), "by": by})]
    changes += [ThreadChange(i, {"by": by}, removed=True, merged_into=into_id) for i in absorbed]
    thread_changes_record(mailbox_id=mailbox_id, event_type=DomainEvent.Type.THREAD_MERGED, changes=changes)


@transaction.atomic
def thread_merge(*, mailbox: Mailbox, thread_ids: list[int], into_thread_id: int) -> Thread:
    """Merge the user's threads into ``into_thread_id``. Later replies to any of their messages follow."""
    wanted = {into_thread_id, *thread_ids}
    locked = threads_lock(mailbox_id=mailbox.id, thread_ids=list(wanted))
    if set(locked) != wanted:
        raise ValidationError("No such thread in this mailbox.")
    absorbed = sorted(wanted - {into_thread_id})
    thread_subject_joins_confirm(mailbox_id=mailbox.id, thread_ids=sorted(wanted))
    if absorbed:
        _threads_fold(mailbox.id, into_id=into_thread_id, absorbed=absorbed, manual=True)
    return Thread.objects.get(pk=into_thread_id)


@transaction.atomic
def thread_split(*, mailbox: Mailbox, message_ids: list[int]) -> Thread:
    """Move messages out of their thread into a new one; later replies to them follow them there."""
    message_threads_lock(mailbox=mailbox, message_ids=message_ids)
    first = Message.objects.filter(mailbox=mailbox, pk__in=message_ids).order_by("date", "id").first()
    if first is None:
        raise ValidationError("No such message in this mailbox.")
    thread = thread_create(mailbox_id=mailbox.id, subject=first.subject, list_id=first.list_id, is_manual=True)
    _messages_relocate(mailbox, message_ids=message_ids, thread_id=thread.pk, event_type=DomainEvent.Type.THREAD_SPLIT)
    return Thread.objects.get(pk=thread.pk)


@transaction.atomic
def message_split_off(*, mailbox: Mailbox, message_id: int) -> Thread:
    """Move one message out of its conversation into a new one (the conversation view's "Split into
    a new conversation"); later replies to it follow it there. A conversation's only message is
    refused: splitting it would change nothing but the thread's id."""
    source = message_threads_lock(mailbox=mailbox, message_ids=[message_id])
    if not source:
        raise ValidationError("No such message in this mailbox.")
    if not Message.objects.filter(mailbox=mailbox, thread_id__in=source).exclude(pk=message_id).exists():
        raise ValidationError("This message is already a conversation of its own.")
    return thread_split(mailbox=mailbox, message_ids=[message_id])


@transaction.atomic
def messages_move_to_thread(*, mailbox: Mailbox, message_ids: list[int], thread_id: int) -> Thread:
    """Move messages into another of the mailbox's threads; the user's choice outlives the resolver's."""
    if not Thread.objects.filter(mailbox_id=mailbox.id, pk=thread_id).exists():
        raise ValidationError("No such thread in this mailbox.")
    message_threads_lock(mailbox=mailbox, message_ids=message_ids, also=[thread_id])
    threads_mark_manual(mailbox_id=mailbox.id, thread_ids=[thread_id])
    _messages_relocate(
        mailbox, message_ids=message_ids, thread_id=thread_id, event_type=DomainEvent.Type.MESSAGES_MOVED
    )
    return Thread.objects.get(pk=thread_id)


def _messages_relocate(mailbox: Mailbox, *, message_ids: list[int], thread_id: int, event_type: str) -> None:
    """Move messages (their threads locked) and their Message-IDs into ``thread_id``; recount both
    sides; one event for the target and one for each thread the messages left."""
    messages = Message.objects.filter(mailbox=mailbox, pk__in=message_ids).exclude(thread_id=thread_id)
    left: dict[int, list[int]] = defaultdict(list)
    header_ids = []
    for pk, source, header_id in messages.values_list("id", "thread_id", "message_id").order_by("id"):
        left[source].append(pk)
        header_ids.append(header_id)
    if not left:
        return
    messages.update(thread_id=thread_id, thread_reason=Message.ThreadReason.MANUAL)
    thread_message_ids_move(mailbox_id=mailbox.id, message_ids=header_ids, thread_id=thread_id)
    emptied = thread_states_apply(mailbox_id=mailbox.id, thread_ids=[thread_id, *left])
    arrived = sorted(pk for pks in left.values() for pk in pks)
    changes = [ThreadChange(thread_id, {"message_ids": arrived, "from_thread_ids": sorted(left)})]
    changes += [
        ThreadChange(source, {"message_ids": pks, "to_thread_id": thread_id}, source in emptied, thread_id)
        for source, pks in left.items()
    ]
    thread_changes_record(mailbox_id=mailbox.id, event_type=event_type, changes=changes)


def message_threads_lock(*, mailbox: Mailbox, message_ids: Iterable[int], also: Iterable[int] = ()) -> set[int]:
    """Lock the threads holding these messages of the mailbox (and the threads ``also``), all in id
    order, and return the ids of the messages' threads.

    Threads are always locked before messages change, in every writer, so writers queue instead of
    deadlocking. A message moved meanwhile is noticed and its new thread locked too.
    """
    ids = list(message_ids)
    messages = Message.objects.filter(mailbox=mailbox, pk__in=ids)
    wanted = set(messages.values_list("thread_id", flat=True))
    for _ in range(LOCK_ATTEMPTS):
        locked = set(threads_lock(mailbox_id=mailbox.id, thread_ids=[*wanted, *also]))
        now = set(messages.values_list("thread_id", flat=True))
        if now <= locked:
            return now
        wanted |= now
    raise RuntimeError("messages kept moving between threads")


def thread_states_compute(*, mailbox_id: int, thread_ids: Iterable[int]) -> dict[int, ThreadState]:
    """Recount summaries and label counts from the messages; a thread without messages is absent.

    Folds the messages in arrival order with the same rules as the incremental updates, so a
    thread kept current incrementally equals its recount. Three queries, bounded by the threads' size.
    """
    ids = list(set(thread_ids))
    own = mailbox_own_addresses(mailbox_id=mailbox_id)
    messages = Message.objects.filter(mailbox_id=mailbox_id, thread_id__in=ids).order_by("id")
    addresses: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    participants = Participant.objects.filter(
        mailbox_id=mailbox_id, message__thread_id__in=ids, role__in=CORRESPONDENT_ROLES
    ).order_by("message_id", "role", "position")
    for message_id, role, address in participants.values_list("message_id", "role", "address"):
        addresses[message_id][role].append(address)
    by_thread: dict[int, list[Message]] = defaultdict(list)
    for message in messages.only(*_RECOUNT_FIELDS):
        by_thread[message.thread_id].append(message)
    labels = _label_counts(mailbox_id, ids)
    return {
        thread_id: ThreadState(_summary_of(rows, addresses, own), labels.get(thread_id, {}))
        for thread_id, rows in by_thread.items()
    }


_RECOUNT_FIELDS = (
    "id",
    "thread_id",
    "date",
    "is_read",
    "is_starred",
    "has_attachments",
    "snippet",
    "from_name",
    "from_address",
    "list_id",
    "source_tag",
)


def _summary_of(
    messages: list[Message], addresses: dict[int, dict[str, list[str]]], own: frozenset[str]
) -> ThreadSummary:
    first = last = None
    snippet = ""
    participants: list[dict] = []
    correspondents: set[str] = set()
    for message in messages:
        if last is None or message.date >= last:
            last, snippet = message.date, message.snippet
        first = message.date if first is None or message.date < first else first
        participants = participants_add(participants, name=message.from_name, address=message.from_address)
        correspondence = correspondence_of(
            sender=message.from_address,
            addresses=addresses.get(message.id, {}),
            list_id=message.list_id,
            source_tag=message.source_tag,
            own=own,
        )
        correspondents.update(correspondence.summary_addresses)
    return ThreadSummary(
        message_count=len(messages),
        unread_count=sum(not m.is_read for m in messages),
        starred_count=sum(m.is_starred for m in messages),
        has_attachments=any(m.has_attachments for m in messages),
        snippet=snippet,
        first_message_at=first,
        last_message_at=last,
        participants=participants,
        participant_addresses=sorted({m.from_address for m in messages} - {""}),
        correspondents=correspondents_capped(correspondents),
    )


def _label_counts(mailbox_id: int, thread_ids: list[int]) -> dict[int, dict[int, tuple[int, int]]]:
    counts: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    rows = MessageLabel.objects.filter(mailbox_id=mailbox_id, message__thread_id__in=thread_ids)
    for thread_id, label_id, is_read in rows.values_list("message__thread_id", "label_id", "message__is_read"):
        entry = counts[thread_id][label_id]
        entry[0] += 1
        entry[1] += 0 if is_read else 1
    return {t: {label: (n, unread) for label, (n, unread) in labels.items()} for t, labels in counts.items()}


def thread_drift_find(*, mailbox_id: int, thread_ids: Iterable[int]) -> list[ThreadDrift]:
    """The mailbox's threads among ``thread_ids`` whose summary or label rows differ from a recount."""
    ids = sorted(set(thread_ids))
    states = thread_states_compute(mailbox_id=mailbox_id, thread_ids=ids)
    stored_labels: dict[int, dict[int, tuple]] = defaultdict(dict)
    for row in ThreadLabel.objects.filter(mailbox_id=mailbox_id, thread_id__in=ids):
        stored_labels[row.thread_id][row.label_id] = (row.message_count, row.unread_count, row.last_message_at)
    drifts = []
    for thread in Thread.objects.filter(mailbox_id=mailbox_id, pk__in=ids).order_by("pk"):
        state = states.get(thread.pk)
        if state is None:
            drifts.append(ThreadDrift(thread.pk, mailbox_id, ("empty",)))
            continue
        fields = state.summary.differences(ThreadSummary.of(thread))
        last = state.summary.last_message_at
        if stored_labels[thread.pk] != {label: (n, unread, last) for label, (n, unread) in state.labels.items()}:
            fields.append("labels")
        if fields:
            drifts.append(ThreadDrift(thread.pk, mailbox_id, tuple(fields)))
    return drifts


@transaction.atomic
def thread_drift_repair(*, mailbox_id: int, thread_ids: Iterable[int]) -> list[ThreadDrift]:
    """Lock the threads, find their drift again and rewrite the drifted ones from a recount."""
    locked = threads_lock(mailbox_id=mailbox_id, thread_ids=list(thread_ids))
    drifts = thread_drift_find(mailbox_id=mailbox_id, thread_ids=locked)
    if drifts:
        emptied = thread_states_apply(mailbox_id=mailbox_id, thread_ids=[d.thread_id for d in drifts])
        changes = [ThreadChange(d.thread_id, {"fields": list(d.fields)}, d.thread_id in emptied) for d in drifts]
        thread_changes_record(mailbox_id=mailbox_id, event_type=DomainEvent.Type.THREAD_REPAIRED, changes=changes)
    return drifts


@transaction.atomic(savepoint=False)
def thread_states_apply(*, mailbox_id: int, thread_ids: Iterable[int]) -> list[int]:
    """Write the recounted summaries and label rows of these threads (locked by the caller);
    delete the threads left without messages and return their ids."""
    ids = sorted(set(thread_ids))
    states = thread_states_compute(mailbox_id=mailbox_id, thread_ids=ids)
    emptied = [i for i in ids if i not in states]
    threads_delete(mailbox_id=mailbox_id, thread_ids=emptied)
    existing: dict[tuple[int, int], ThreadLabel] = {
        (row.thread_id, row.label_id): row
        for row in ThreadLabel.objects.filter(mailbox_id=mailbox_id, thread_id__in=states)
    }
    for thread_id, state in states.items():
        thread_summary_set(thread_id=thread_id, summary=state.summary)
        _thread_labels_set(mailbox_id, thread_id, state, existing)
    return emptied


def _thread_labels_set(mailbox_id: int, thread_id: int, state: ThreadState, existing: dict) -> None:
    stale = [row.pk for (t, label), row in existing.items() if t == thread_id and label not in state.labels]
    ThreadLabel.objects.filter(pk__in=stale).delete()
    for label_id, (count, unread) in state.labels.items():
        row = existing.get((thread_id, label_id)) or ThreadLabel(
            mailbox_id=mailbox_id, label_id=label_id, thread_id=thread_id
        )
        wanted = (count, unread, state.summary.last_message_at)
        if row.pk is None or (row.message_count, row.unread_count, row.last_message_at) != wanted:
            row.message_count, row.unread_count, row.last_message_at = wanted
            row.save()


@dataclass(frozen=True)
class ThreadChange:
    """What one change did to one thread: its domain event's payload and its live update."""

    thread_id: int
    details: dict[str, Any] = field(default_factory=dict)  # the payload beyond thread_id
    removed: bool = False  # the thread is gone: merged away (``merged_into``) or deleted
    merged_into: int | None = None

    @property
    def payload(self) -> dict[str, Any]:
        gone = {"merged_into": self.merged_into} if self.removed else {}
        return {"thread_id": self.thread_id, **self.details, **gone}

    def live_event(self, event_id: int) -> dict[str, Any]:
        """The contract the browser builds against."""
        if self.removed:
            return {
                "type": "thread.removed",
                "thread_id": self.thread_id,
                "merged_into": self.merged_into,
                "event_id": event_id,
            }
        return {"type": "thread.updated", "thread_id": self.thread_id, "event_id": event_id}


def thread_changes_record(
    *, mailbox_id: int, event_type: str, changes: Iterable[ThreadChange], tab: str = ""
) -> list[DomainEvent]:
    """Append one domain event per thread changed, in the caller's transaction (one statement), and
    once it commits tell the mailbox's open tabs which thread rows to redraw or drop. ``tab``: the
    browser tab the change was made from (``mailbox.live``), named in the events so it knows them."""
    ordered = sorted(changes, key=lambda change: change.thread_id)
    specs = [EventSpec(event_type, "thread", change.thread_id, change.payload) for change in ordered]
    events = domain_events_record(events=specs, mailbox_id=mailbox_id, source_tag=tab_source_tag(tab))
    merged = {change.thread_id: change.merged_into for change in ordered if change.removed and change.merged_into}
    if merged:
        _merged_threads_record(mailbox_id=mailbox_id, merged=merged)
    deleted = [change.thread_id for change in ordered if change.removed and not change.merged_into]
    if deleted:
        # Old addresses that led to these lead nowhere now: their rows would only ever answer 404.
        MergedThread.objects.filter(mailbox_id=mailbox_id, merged_into__in=deleted).delete()
    from_tab = {"tab": tab} if tab else {}
    for change, event in zip(ordered, events, strict=True):
        mailbox_publish_on_commit(mailbox_id=mailbox_id, event={**change.live_event(event.id), **from_tab})
    return events


def _merged_threads_record(*, mailbox_id: int, merged: dict[int, int]) -> None:
    """Remember where the conversations gone into others (old id → id merged into) went, so their
    old addresses lead there; earlier ones that went into these now lead on to the same place.
    Two statements, whatever the number of threads."""
    MergedThread.objects.filter(mailbox_id=mailbox_id, merged_into__in=merged).update(
        merged_into=Case(*(When(merged_into=old, then=Value(new)) for old, new in merged.items()))
    )
    MergedThread.objects.bulk_create(
        [MergedThread(mailbox_id=mailbox_id, thread_id=old, merged_into=new) for old, new in merged.items()],
        ignore_conflicts=True,  # an id is merged away once: a replayed record changes nothing
    )
