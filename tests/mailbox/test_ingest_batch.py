"""A batch places and counts every message exactly as delivering them one by one does.

The batched path (``copies_deliver``) reads the Message-ID map once, keeps thread rows and their
summaries in memory and writes everything in a few statements; merges, subject joins and fragments
flush it midway. Real list mail in the evaluation's arrival orders (shuffled: late parents merge
replies that came first; stripped headers: subject joins and fragments; mangled subjects) goes into
one mailbox one by one and into another in batches: same conversations, same reasons, same
summaries and label rows, same Message-ID map rows with their subject anchors, no drift. Subject joins
that later headers confirm, move elsewhere or move to a conversation of their own give the same
result whether the guess and the headers that judge it arrive in one batch or in different ones.
"""

from collections import defaultdict
from dataclasses import replace

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.threading_eval import Headers, archive_read, scenario_build
from delivery.services import blob_store
from mailbox.models import Label, Mailbox, Message, ThreadLabel
from mailbox.parsing import parse_message
from mailbox.services import message_deliver
from mailbox.services.delivering import Copy, DeferredRows, copies_deliver, mailbox_deliveries_lock
from mailsite.models import DomainEvent
from tests.conftest import SHARED_CORPORA
from tests.threads.builders import assert_no_drift, published_capture, raw_mail
from threads.models import Thread, ThreadMessageId
from threads.services import ThreadSummary

ARCHIVE = SHARED_CORPORA / "mailing-lists" / "ksummit-discuss.lists.linuxfoundation.org.mbox"
MESSAGES = 160
BATCH = 25

needs_archive = pytest.mark.skipif(not ARCHIVE.exists(), reason="needs ../shared/corpora/mailing-lists")


def _copies(scenario_name: str) -> list[Copy]:
    raws = archive_read(ARCHIVE)[:MESSAGES]
    now = timezone.now()
    parsed = [parse_message(raw, received_at=now) for raw in raws]
    headers = [Headers(p.message_id, p.in_reply_to, tuple(p.references), p.subject, p.list_id) for p in parsed]
    scenario = scenario_build(scenario_name, headers, seed=3)
    copies = []
    for i in scenario.order:
        h = scenario.headers[i]
        variant = replace(parsed[i], in_reply_to=h.in_reply_to, references=list(h.references), subject=h.subject)
        copies.append(Copy(blob_store(data=raws[i]), variant, "eval", is_read=i % 3 == 0, is_starred=i % 7 == 0))
    return copies


def _deliver_one_by_one(mailbox: Mailbox, copies: list[Copy]) -> None:
    for c in copies:
        message_deliver(
            mailbox=mailbox,
            blob=c.blob,
            parsed=c.parsed,
            source_tag=c.source_tag,
            is_read=c.is_read,
            is_starred=c.is_starred,
        )


def _deliver_in_batches(mailbox: Mailbox, copies: list[Copy], sizes: tuple[int, ...] = ()) -> None:
    """In batches of ``BATCH``, or of the ``sizes`` given, one transaction each."""
    sizes = sizes or tuple(BATCH for _ in range(0, len(copies), BATCH))
    assert sum(sizes) >= len(copies)
    start = 0
    for size in sizes:
        with transaction.atomic():
            mailbox_deliveries_lock(mailbox_ids=[mailbox.id], exclusive=True)
            copies_deliver(copies=[(mailbox, c) for c in copies[start : start + size]], deferred=DeferredRows())
        start += size


def _conversations(mailbox: Mailbox) -> dict[frozenset[str], tuple]:
    """Each thread as the set of its messages' blobs, with its summary, labels and the messages' reasons."""
    members: dict[int, set[str]] = defaultdict(set)
    reasons: dict[int, set[tuple[str, str]]] = defaultdict(set)
    rows = Message.objects.filter(mailbox=mailbox).values_list("thread_id", "blob__sha256", "thread_reason")
    for thread_id, sha, reason in rows:
        members[thread_id].add(sha)
        reasons[thread_id].add((sha, reason))
    labels = defaultdict(set)
    for row in ThreadLabel.objects.filter(mailbox=mailbox).select_related("label"):
        labels[row.thread_id].add((row.label.name, row.message_count, row.unread_count, row.last_message_at))
    threads = {t.pk: t for t in Thread.objects.filter(mailbox_id=mailbox.id)}
    assert set(threads) == set(members), "a thread without messages, or a message without its thread"
    return {
        frozenset(shas): (
            ThreadSummary.of(threads[tid]),
            threads[tid].is_fragment,
            labels[tid],
            reasons[tid],
            id_rows[tid],
        )
        for tid, shas in members.items()
        for id_rows in [_map_rows(mailbox)]
    }


def _map_rows(mailbox: Mailbox) -> dict[int, set[tuple]]:
    """The Message-ID map by thread: each id with whether it arrived, its sender, bulk flag and subject anchor."""
    rows = defaultdict(set)
    columns = ("thread_id", "message_id", "seen", "sender", "is_bulk", "subject_anchor")
    for thread_id, *row in ThreadMessageId.objects.filter(mailbox_id=mailbox.id).values_list(*columns):
        rows[thread_id].add(tuple(row))
    return rows


def _anchors(mailbox: Mailbox) -> set[str]:
    rows = ThreadMessageId.objects.filter(mailbox_id=mailbox.id).exclude(subject_anchor="")
    return set(rows.values_list("subject_anchor", flat=True))


@needs_archive
@pytest.mark.django_db
@pytest.mark.parametrize("scenario_name", ["b", "d", "e"])
def test_a_batch_places_and_counts_every_message_as_one_by_one_delivery_does(scenario_name, mailbox, other_mailbox):
    copies = _copies(scenario_name)

    _deliver_one_by_one(mailbox, copies)
    _deliver_in_batches(other_mailbox, copies)

    alone, batched = _conversations(mailbox), _conversations(other_mailbox)
    assert set(batched) == set(alone)
    for members, state in alone.items():
        assert batched[members] == state
    assert_no_drift(mailbox)
    assert_no_drift(other_mailbox)
    assert len(alone) < MESSAGES  # conversations were formed, not one thread per message
    assert _anchors(other_mailbox) == _anchors(mailbox)
    if scenario_name in ("d", "e"):  # stripped headers: some subject joins are still unconfirmed guesses
        assert _anchors(mailbox)


@needs_archive
@pytest.mark.django_db
def test_a_batch_takes_a_bounded_number_of_statements_and_publishes_every_message(
    mailbox, monkeypatch, django_capture_on_commit_callbacks
):
    copies = _copies("a")  # the archive's order, headers intact
    published = published_capture(monkeypatch)

    with (
        django_capture_on_commit_callbacks(execute=True),
        CaptureQueriesContext(connection) as queries,
        transaction.atomic(),
    ):
        mailbox_deliveries_lock(mailbox_ids=[mailbox.id], exclusive=True)
        delivered = copies_deliver(copies=[(mailbox, c) for c in copies], deferred=DeferredRows())

    assert len(delivered) == MESSAGES
    assert len(queries) < 40  # a message at a time took ~12 per message
    assert len(published) == MESSAGES
    assert {e["thread_id"] for e in published} == set(
        Message.objects.filter(mailbox=mailbox).values_list("thread_id", flat=True)
    )
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    assert sum(ThreadLabel.objects.filter(label=inbox).values_list("message_count", flat=True)) == MESSAGES
    assert_no_drift(mailbox)


# Subject joins that later headers judge (tests/threads/test_resolver.py's cases, as mail): the guesses
# first, then the messages whose headers confirm or undo them.
_GUESSES = [
    # A reply naming only a parent never received joins the nearer conversation of its subject by
    # subject; a reply to it joins through it (inheriting its anchor).
    ("one@x", "Re: Budget", {"references": ("root-1@y",)}, "Mon, 02 Nov 2026 10:00:00 +0000"),
    ("two@x", "Re: Budget", {"references": ("root-2@y",)}, "Wed, 04 Nov 2026 10:00:00 +0000"),
    ("guess@x", "Re: Budget", {"in_reply_to": "parent@x"}, "Wed, 04 Nov 2026 11:00:00 +0000"),
    ("answer@x", "Re: Budget", {"in_reply_to": "guess@x"}, "Wed, 04 Nov 2026 12:00:00 +0000"),
    # A reply whose unknown parent will arrive as a conversation's first message.
    ("plan@x", "Plan", {}, "Mon, 02 Nov 2026 10:00:00 +0000"),
    ("plan-orphan@x", "Re: Plan", {"in_reply_to": "other-plan@x"}, "Mon, 02 Nov 2026 12:00:00 +0000"),
    # A subject join that a later chain through the missing parent confirms.
    ("offsite@x", "Re: Offsite", {"references": ("offsite-root@y",)}, "Mon, 02 Nov 2026 10:00:00 +0000"),
    ("offsite-orphan@x", "Re: Offsite", {"in_reply_to": "offsite-missing@y"}, "Mon, 02 Nov 2026 11:00:00 +0000"),
    # A headerless reply that starts a fragment, adopted by the conversation of its subject.
    ("stray@x", "Re: Retro", {}, "Mon, 02 Nov 2026 12:00:00 +0000"),
    ("retro@x", "Retro", {}, "Mon, 02 Nov 2026 10:00:00 +0000"),
    ("retro-one@x", "Re: Retro", {"references": ("retro-root@y",)}, "Mon, 02 Nov 2026 11:00:00 +0000"),
]
_JUDGES = [
    ("parent@x", "Re: Budget", {"references": ("root-1@y",)}, "Mon, 02 Nov 2026 11:00:00 +0000"),
    ("other-plan@x", "Plan", {}, "Mon, 02 Nov 2026 11:00:00 +0000"),
    (
        "offsite-child@x",
        "Re: Offsite",
        {"references": ("offsite-root@y", "offsite-missing@y", "offsite-orphan@x")},
        "Mon, 02 Nov 2026 13:00:00 +0000",
    ),
    ("retro-child@x", "Re: Retro", {"references": ("retro-root@y", "stray@x")}, "Mon, 02 Nov 2026 13:00:00 +0000"),
    # Replies to judged messages, after the judgement (in the same batch, the batch's memory must follow it).
    ("guess-late@x", "Re: Budget", {"in_reply_to": "guess@x"}, "Wed, 04 Nov 2026 13:00:00 +0000"),
    ("offsite-late@x", "Re: Offsite", {"in_reply_to": "offsite-orphan@x"}, "Mon, 02 Nov 2026 14:00:00 +0000"),
]


def _judged_copies() -> list[Copy]:
    now = timezone.now()
    copies = []
    for message_id, subject, headers, date in [*_GUESSES, *_JUDGES]:
        # To a list address, neither mailbox's own: both mailboxes see the same correspondents.
        raw = raw_mail(message_id, subject, to="team@lists.example.org", cc="dave@example.org", date=date, **headers)
        copies.append(Copy(blob_store(data=raw), parse_message(raw, received_at=now), "test", is_read=True))
    return copies


def _thread_ids(mailbox: Mailbox, *message_ids: str) -> set[int]:
    return set(Message.objects.filter(mailbox=mailbox, message_id__in=message_ids).values_list("thread_id", flat=True))


def _moved_events(mailbox: Mailbox) -> list[dict]:
    rows = DomainEvent.objects.filter(mailbox_id=mailbox.id, event_type=DomainEvent.Type.MESSAGES_MOVED)
    return [row.payload for row in rows.order_by("id")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sizes",
    [
        (len(_GUESSES) + len(_JUDGES),),  # guesses and their judges in one batch
        (len(_GUESSES), len(_JUDGES)),  # the judges in the next batch
        (3, 3, 3, 3, 3, 2),  # split anywhere
    ],
    ids=["one-batch", "next-batch", "batches-of-3"],
)
def test_subject_joins_judged_later_end_as_in_one_by_one_delivery_within_and_across_batches(
    sizes, mailbox, other_mailbox
):
    copies = _judged_copies()

    _deliver_one_by_one(mailbox, copies)
    _deliver_in_batches(other_mailbox, copies, sizes)

    for box in (mailbox, other_mailbox):
        # The guess and the reply through it moved to the parent's conversation, as references now.
        assert len(_thread_ids(box, "guess@x", "answer@x", "parent@x", "one@x", "guess-late@x")) == 1
        assert _thread_ids(box, "guess@x").isdisjoint(_thread_ids(box, "two@x"))
        moved = Message.objects.filter(mailbox=box, message_id__in=["guess@x", "answer@x"])
        assert set(moved.values_list("thread_reason", flat=True)) == {Message.ThreadReason.REFERENCE}
        # The orphan went with its parent, a conversation of its own.
        assert len(_thread_ids(box, "plan-orphan@x", "other-plan@x")) == 1
        assert _thread_ids(box, "plan-orphan@x").isdisjoint(_thread_ids(box, "plan@x"))
        # The fragment left its adopter for the conversation its reply names.
        assert len(_thread_ids(box, "stray@x", "retro-child@x", "retro-one@x")) == 1
        assert _thread_ids(box, "stray@x").isdisjoint(_thread_ids(box, "retro@x"))
        # The confirmed join stays, certain now; nothing is left to judge.
        assert len(_thread_ids(box, "offsite@x", "offsite-orphan@x", "offsite-child@x", "offsite-late@x")) == 1
        assert _anchors(box) == set()
        assert_no_drift(box)
    alone, batched = _conversations(mailbox), _conversations(other_mailbox)
    assert batched == alone
    assert len(_moved_events(other_mailbox)) == len(_moved_events(mailbox)) > 0


@pytest.mark.django_db
@pytest.mark.parametrize("sizes", [(len(_GUESSES),), (4, 4, 3)], ids=["one-batch", "batches-of-4"])
def test_unjudged_subject_joins_keep_the_same_anchors_in_a_batch(sizes, mailbox, other_mailbox):
    copies = _judged_copies()[: len(_GUESSES)]

    _deliver_one_by_one(mailbox, copies)
    _deliver_in_batches(other_mailbox, copies, sizes)

    assert _anchors(mailbox) == {"guess@x", "plan-orphan@x", "offsite-orphan@x", "stray@x"}
    assert _anchors(other_mailbox) == _anchors(mailbox)
    assert _conversations(other_mailbox) == _conversations(mailbox)


# Replies without References that join by subject: a conversation already in the database (the
# first batch), whose row the second batch changes before its next look-up (the window reaches the
# last reply only through the batch's own join), and one the second batch itself starts.
_SUBJECT_REPLIES = [
    [("budget@x", "Budget", "Mon, 02 Nov 2026 10:00:00 +0000")],
    [
        ("budget-re1@x", "Re: Budget", "Tue, 10 Nov 2026 10:00:00 +0000"),
        ("budget-re2@x", "Re: Budget", "Fri, 20 Nov 2026 10:00:00 +0000"),
        ("forecast@x", "Forecast", "Mon, 02 Nov 2026 10:00:00 +0000"),
        ("forecast-re1@x", "Re: Forecast", "Mon, 02 Nov 2026 11:00:00 +0000"),
        ("forecast-re2@x", "RE: Forecast", "Mon, 02 Nov 2026 12:00:00 +0000"),
        ("stray@x", "Re: Retro", "Mon, 02 Nov 2026 12:00:00 +0000"),
    ],
]


@pytest.mark.django_db
def test_subject_look_ups_in_a_batch_read_its_own_threads_from_memory_without_flushing(mailbox, other_mailbox):
    now = timezone.now()
    copies = []
    for message_id, subject, date in [m for batch in _SUBJECT_REPLIES for m in batch]:
        raw = raw_mail(message_id, subject, to="team@lists.example.org", date=date)
        copies.append(Copy(blob_store(data=raw), parse_message(raw, received_at=now), "test"))
    first = len(_SUBJECT_REPLIES[0])

    _deliver_one_by_one(mailbox, copies)
    _deliver_in_batches(other_mailbox, copies[:first])
    with CaptureQueriesContext(connection) as queries:
        _deliver_in_batches(other_mailbox, copies[first:])

    message_inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "mailbox_message"')]
    assert len(message_inserts) == 1  # the batch's messages in one statement: no flush midway
    for box in (mailbox, other_mailbox):
        assert len(_thread_ids(box, "budget@x", "budget-re1@x", "budget-re2@x")) == 1
        assert len(_thread_ids(box, "forecast@x", "forecast-re1@x", "forecast-re2@x")) == 1
        reasons = Message.objects.filter(mailbox=box, message_id__in=["budget-re2@x", "forecast-re2@x"])
        assert set(reasons.values_list("thread_reason", flat=True)) == {Message.ThreadReason.SUBJECT}
        assert_no_drift(box)
    assert _conversations(other_mailbox) == _conversations(mailbox)
