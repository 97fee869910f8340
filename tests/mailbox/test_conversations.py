"""Conversations through the real delivery pipeline: automatic merges, and the user's split, merge and move."""

from unittest.mock import ANY

import pytest
from django.core.exceptions import ValidationError

from mailbox.models import Label, Message, ThreadLabel
from mailbox.services import messages_move_to_thread, thread_merge, thread_split
from mailsite.models import DomainEvent
from tests.threads.builders import (
    assert_no_drift,
    deliver,
    published_capture,
    reply,
    thread_events,
    thread_of,
)
from threads.models import Thread, ThreadMessageId

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    return published_capture(monkeypatch)


def _conversation(mailbox):
    """a ← b ← c, each a full-header reply to the one before."""
    a = deliver(mailbox, "a@x", "Budget 2027")
    b = reply(mailbox, "b@x", a, sender="Dave <dave@example.org>")
    c = reply(mailbox, "c@x", b)
    return a, b, c


# --- Automatic merges on delivery -----------------------------------------------------------


def test_a_late_parent_merges_two_threads_and_moves_their_messages(
    mailbox, published, django_capture_on_commit_callbacks
):
    first = deliver(mailbox, "c@x", "Re: Budget", in_reply_to="b@x", references=("b@x",))
    second = deliver(mailbox, "a-reply@x", "Re: Budget", in_reply_to="a@x", references=("a@x",))
    assert first.thread_id != second.thread_id

    with django_capture_on_commit_callbacks(execute=True):
        late = deliver(mailbox, "b@x", "Re: Budget", in_reply_to="a@x", references=("a@x",))

    thread = thread_of(late)
    assert set(Message.objects.filter(mailbox=mailbox).values_list("thread_id", flat=True)) == {thread.pk}
    assert (thread.message_count, thread.unread_count) == (3, 3)
    inbox = ThreadLabel.objects.get(mailbox=mailbox)
    assert (inbox.thread_id, inbox.message_count) == (thread.pk, 3)
    assert Thread.objects.filter(mailbox_id=mailbox.id).count() == 1
    gone = ({first.thread_id, second.thread_id} - {thread.pk}).pop()
    merged = thread_events(mailbox, DomainEvent.Type.THREAD_MERGED)
    assert merged == {
        thread.pk: {"thread_id": thread.pk, "absorbed": [gone], "by": "resolver", "event_id": ANY},
        gone: {"thread_id": gone, "by": "resolver", "merged_into": thread.pk, "event_id": ANY},
    }
    removed = {
        "type": "thread.removed",
        "thread_id": gone,
        "merged_into": thread.pk,
        "event_id": merged[gone]["event_id"],
    }
    received = DomainEvent.objects.get(event_type=DomainEvent.Type.MESSAGE_RECEIVED, subject_id=late.pk)
    assert removed in published
    assert published[-1] == {"type": "thread.updated", "thread_id": thread.pk, "event_id": received.id}
    assert_no_drift(mailbox)


def test_a_reply_without_headers_joins_by_subject_through_delivery(mailbox):
    root = deliver(mailbox, "root@x", "Budget 2027", sender="Carol <carol@example.org>")

    lost = deliver(mailbox, "lost@x", "AW: Budget 2027", sender="Dave <dave@example.org>", cc="carol@example.org")

    assert (lost.thread_id, lost.thread_reason) == (root.thread_id, Message.ThreadReason.SUBJECT)
    assert thread_of(root).correspondents == ["carol@example.org", "dave@example.org"]
    assert_no_drift(mailbox)


def test_a_reply_that_arrived_before_its_root_without_headers_joins_it_then(mailbox):
    early = deliver(mailbox, "r@x", "Re: Budget 2027", sender="Dave <dave@example.org>", cc="carol@example.org")

    root = deliver(mailbox, "root@x", "Budget 2027", date="Sun, 01 Nov 2026 10:00:00 +0000")

    early.refresh_from_db()
    assert early.thread_id == root.thread_id
    assert thread_of(root).message_count == 2
    assert_no_drift(mailbox)


def test_a_subject_join_that_later_headers_contradict_moves_the_message_and_keeps_summaries(mailbox):
    # Two conversations of one subject the mailbox joined midway; a reply naming only a parent it never
    # received joins the nearer one by subject, and the parent, arriving later, belongs to the other.
    one = deliver(mailbox, "one@x", "Re: Budget", references=("root-1@y",), date="Mon, 02 Nov 2026 10:00:00 +0000")
    two = deliver(mailbox, "two@x", "Re: Budget", references=("root-2@y",), date="Wed, 04 Nov 2026 10:00:00 +0000")
    guess = deliver(mailbox, "guess@x", "Re: Budget", in_reply_to="parent@x", date="Wed, 04 Nov 2026 11:00:00 +0000")
    assert (guess.thread_id, guess.thread_reason) == (two.thread_id, Message.ThreadReason.SUBJECT)

    parent = deliver(mailbox, "parent@x", "Re: Budget", references=("root-1@y",))

    guess.refresh_from_db()
    assert guess.thread_id == parent.thread_id == one.thread_id
    assert guess.thread_reason == Message.ThreadReason.REFERENCE
    assert (thread_of(one).message_count, thread_of(two).message_count) == (3, 1)
    moved = thread_events(mailbox, DomainEvent.Type.MESSAGES_MOVED)
    assert moved[two.thread_id]["to_thread_id"] == one.thread_id
    assert moved[one.thread_id]["message_ids"] == [guess.pk]
    assert_no_drift(mailbox)


def test_a_message_the_user_moved_stays_where_they_put_it_when_later_headers_disagree(mailbox):
    one = deliver(mailbox, "one@x", "Re: Budget", references=("root-1@y",), date="Mon, 02 Nov 2026 10:00:00 +0000")
    two = deliver(mailbox, "two@x", "Re: Budget", references=("root-2@y",), date="Wed, 04 Nov 2026 10:00:00 +0000")
    guess = deliver(mailbox, "guess@x", "Re: Budget", in_reply_to="parent@x", date="Mon, 02 Nov 2026 11:00:00 +0000")
    assert guess.thread_id == one.thread_id
    messages_move_to_thread(mailbox=mailbox, message_ids=[guess.pk], thread_id=two.thread_id)

    deliver(mailbox, "parent@x", "Re: Budget", references=("root-1@y",))

    guess.refresh_from_db()
    assert guess.thread_id == two.thread_id
    assert_no_drift(mailbox)


def test_the_subject_joins_of_threads_the_user_merged_are_theirs_to_keep(mailbox):
    one = deliver(mailbox, "one@x", "Re: Budget", references=("root-1@y",), date="Mon, 02 Nov 2026 10:00:00 +0000")
    two = deliver(mailbox, "two@x", "Re: Plan", references=("root-2@y",), date="Mon, 02 Nov 2026 10:00:00 +0000")
    guess = deliver(mailbox, "guess@x", "Re: Budget", in_reply_to="parent@x", date="Mon, 02 Nov 2026 11:00:00 +0000")
    thread_merge(mailbox=mailbox, thread_ids=[two.thread_id], into_thread_id=one.thread_id)
    other = deliver(mailbox, "other@x", "Re: Budget", references=("root-3@y",))

    parent = deliver(mailbox, "parent@x", "Re: Budget", references=("root-3@y",))

    # Decided, so not taken out: the parent's headers join the merged thread and the other one, as
    # for any message whose parent is known.
    for message in (guess, one, other):
        message.refresh_from_db()
    assert guess.thread_id == one.thread_id == parent.thread_id == other.thread_id
    assert_no_drift(mailbox)


def test_the_owners_own_address_is_no_shared_participant(mailbox):
    root = deliver(mailbox, "root@x", "Budget 2027")

    stranger = deliver(mailbox, "s@x", "Re: Budget 2027", sender="Eve <eve@example.net>", to="alice@example.test")

    assert stranger.thread_id != root.thread_id


def test_private_replies_to_a_campaign_are_one_conversation_per_customer(mailbox):
    customers = ", ".join(f"customer{i}@example.net" for i in range(12))
    campaign = deliver(
        mailbox,
        "sale@shop",
        "Spring sale",
        sender="Alice <alice@example.test>",
        to="alice@example.test",
        bcc=customers,
        label_roles=(Label.Role.SENT,),
        source_tag="campaign:7",
    )

    bob = reply(mailbox, "bob@x", campaign, sender="customer1@example.net")
    carol = reply(mailbox, "carol@x", campaign, sender="customer2@example.net")
    bob_again = reply(mailbox, "bob2@x", bob, sender="customer1@example.net")

    assert len({campaign.thread_id, bob.thread_id, carol.thread_id}) == 3
    assert bob_again.thread_id == bob.thread_id
    assert_no_drift(mailbox)


# --- Split ------------------------------------------------------------------------------------


def test_splitting_a_message_out_makes_it_a_thread_and_later_replies_follow(mailbox):
    a, b, _c = _conversation(mailbox)
    source = a.thread_id

    split = thread_split(mailbox=mailbox, message_ids=[b.pk])

    b.refresh_from_db()
    assert (b.thread_id, b.thread_reason, split.is_manual, split.message_count) == (
        split.pk,
        Message.ThreadReason.MANUAL,
        True,
        1,
    )
    assert Thread.objects.get(pk=source).message_count == 2
    assert ThreadMessageId.objects.get(mailbox_id=mailbox.id, message_id="b@x").thread_id == split.pk
    # A reply to b names a as well: it follows b, and the user's split is not undone.
    follow = reply(mailbox, "d@x", b)
    to_a = reply(mailbox, "e@x", a)
    assert follow.thread_id == split.pk
    assert to_a.thread_id == source
    assert Thread.objects.get(pk=source).message_count == 3
    assert_no_drift(mailbox)


def test_splitting_every_message_of_a_thread_deletes_the_empty_one(mailbox):
    a = deliver(mailbox, "a@x", "Budget 2027")
    old = a.thread_id

    thread_split(mailbox=mailbox, message_ids=[a.pk])

    assert not Thread.objects.filter(pk=old).exists()
    assert_no_drift(mailbox)


# --- Merge ------------------------------------------------------------------------------------


def test_merging_two_threads_keeps_one_with_both_summaries(mailbox):
    budget = deliver(mailbox, "a@x", "Budget")
    trip = deliver(mailbox, "t@x", "Trip", sender="Dave <dave@example.org>", is_read=True)
    unread_budget = reply(mailbox, "b@x", budget)

    merged = thread_merge(mailbox=mailbox, thread_ids=[trip.thread_id], into_thread_id=budget.thread_id)

    assert not Thread.objects.filter(pk=trip.thread_id).exists()
    assert (merged.message_count, merged.unread_count) == (3, 2)
    assert [p["address"] for p in merged.participants] == ["carol@example.org", "dave@example.org"]
    trip.refresh_from_db()
    assert trip.thread_reason == Message.ThreadReason.MANUAL
    assert ThreadLabel.objects.get(mailbox=mailbox).message_count == 3
    later = reply(mailbox, "t2@x", trip)
    assert later.thread_id == merged.pk == unread_budget.thread_id
    assert_no_drift(mailbox)


def test_merging_another_mailboxs_thread_is_refused(mailbox, other_mailbox):
    mine = deliver(mailbox, "a@x")
    theirs = deliver(other_mailbox, "b@x", to="bob@example.test")

    with pytest.raises(ValidationError):
        thread_merge(mailbox=mailbox, thread_ids=[theirs.thread_id], into_thread_id=mine.thread_id)
    assert thread_of(theirs).message_count == 1


# --- Move -------------------------------------------------------------------------------------


def test_moving_a_message_to_another_thread_and_its_replies_follow(mailbox):
    a, _b, c = _conversation(mailbox)
    trip = deliver(mailbox, "t@x", "Trip")

    moved = messages_move_to_thread(mailbox=mailbox, message_ids=[c.pk], thread_id=trip.thread_id)

    assert (moved.message_count, moved.is_manual) == (2, True)
    assert thread_of(a).message_count == 2
    assert reply(mailbox, "d@x", c).thread_id == trip.thread_id
    assert_no_drift(mailbox)


def test_moving_into_or_splitting_from_another_mailbox_is_refused(mailbox, other_mailbox):
    mine = deliver(mailbox, "a@x")
    theirs = deliver(other_mailbox, "b@x", to="bob@example.test")

    with pytest.raises(ValidationError):
        messages_move_to_thread(mailbox=mailbox, message_ids=[mine.pk], thread_id=theirs.thread_id)
    with pytest.raises(ValidationError):
        thread_split(mailbox=mailbox, message_ids=[theirs.pk])
    assert thread_of(mine).message_count == thread_of(theirs).message_count == 1


# --- Events of the user's restructuring ----------------------------------------------------


def test_a_split_records_an_event_for_the_new_thread_and_its_source(
    mailbox, published, django_capture_on_commit_callbacks
):
    a, b, c = _conversation(mailbox)
    source = a.thread_id

    with django_capture_on_commit_callbacks(execute=True):
        split = thread_split(mailbox=mailbox, message_ids=[b.pk, c.pk])

    events = thread_events(mailbox, DomainEvent.Type.THREAD_SPLIT)
    assert events == {
        source: {"thread_id": source, "message_ids": [b.pk, c.pk], "to_thread_id": split.pk, "event_id": ANY},
        split.pk: {"thread_id": split.pk, "message_ids": [b.pk, c.pk], "from_thread_ids": [source], "event_id": ANY},
    }
    assert published == [
        {"type": "thread.updated", "thread_id": source, "event_id": events[source]["event_id"]},
        {"type": "thread.updated", "thread_id": split.pk, "event_id": events[split.pk]["event_id"]},
    ]


def test_moving_a_threads_last_message_removes_it_in_favour_of_the_target(
    mailbox, published, django_capture_on_commit_callbacks
):
    lone = deliver(mailbox, "lone@x", "Trip")
    target = deliver(mailbox, "a@x", "Budget 2027")

    with django_capture_on_commit_callbacks(execute=True):
        messages_move_to_thread(mailbox=mailbox, message_ids=[lone.pk], thread_id=target.thread_id)

    events = thread_events(mailbox, DomainEvent.Type.MESSAGES_MOVED)
    assert events[lone.thread_id]["merged_into"] == target.thread_id
    assert events[target.thread_id]["from_thread_ids"] == [lone.thread_id]
    assert published == [
        {
            "type": "thread.removed",
            "thread_id": lone.thread_id,
            "merged_into": target.thread_id,
            "event_id": events[lone.thread_id]["event_id"],
        },
        {"type": "thread.updated", "thread_id": target.thread_id, "event_id": events[target.thread_id]["event_id"]},
    ]


def test_a_manual_merge_of_several_threads_is_one_transaction_of_one_event_each(
    mailbox, published, django_capture_on_commit_callbacks
):
    into, *others = [deliver(mailbox, f"{n}@x", f"Topic {n}") for n in ("one", "two", "three")]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        thread_merge(mailbox=mailbox, thread_ids=[o.thread_id for o in others], into_thread_id=into.thread_id)

    events = thread_events(mailbox, DomainEvent.Type.THREAD_MERGED)
    assert events[into.thread_id]["absorbed"] == sorted(o.thread_id for o in others)
    assert {events[o.thread_id]["merged_into"] for o in others} == {into.thread_id}
    assert {e["by"] for e in events.values()} == {"user"}
    assert len(callbacks) == 3
    assert sorted(p["type"] for p in published) == ["thread.removed", "thread.removed", "thread.updated"]
    assert all(p["event_id"] == events[p["thread_id"]]["event_id"] for p in published)
