"""A batch places and counts every message exactly as delivering them one by one does.

The batched path (``copies_deliver``) reads the Message-ID map once, keeps thread rows and their
summaries in memory and writes everything in a few statements; merges, subject joins and fragments
flush it midway. Real list mail in the evaluation's arrival orders (shuffled: late parents merge
replies that came first; stripped headers: subject joins and fragments; mangled subjects) goes into
one mailbox one by one and into another in batches: same conversations, same reasons, same
summaries and label rows, no drift.
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
from tests.conftest import SHARED_CORPORA
from tests.threads.builders import assert_no_drift, published_capture
from threads.models import Thread
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


def _deliver_in_batches(mailbox: Mailbox, copies: list[Copy]) -> None:
    for start in range(0, len(copies), BATCH):
        with transaction.atomic():
            mailbox_deliveries_lock(mailbox_ids=[mailbox.id], exclusive=True)
            copies_deliver(copies=[(mailbox, c) for c in copies[start : start + BATCH]], deferred=DeferredRows())


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
        frozenset(shas): (ThreadSummary.of(threads[tid]), threads[tid].is_fragment, labels[tid], reasons[tid])
        for tid, shas in members.items()
    }


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
