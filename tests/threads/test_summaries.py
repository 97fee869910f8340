"""Summary rules that an incremental add and a recount from the messages must both reproduce."""

from datetime import UTC, datetime

import pytest

from tests.threads.builders import assert_no_drift, deliver, thread_of
from threads.services import (
    MAX_CORRESPONDENTS,
    MAX_DISPLAY_PARTICIPANTS,
    SummaryDelta,
    correspondents_capped,
    participants_add,
    thread_add_message_summary,
    thread_create,
)

WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_capping_correspondents_one_address_at_a_time_equals_capping_them_all():
    addresses = [f"user{i:04d}@example.org" for i in reversed(range(MAX_CORRESPONDENTS + 50))]
    step_by_step: list[str] = []
    for address in addresses:
        step_by_step = correspondents_capped([*step_by_step, address])

    assert step_by_step == correspondents_capped(addresses) == sorted(addresses)[:MAX_CORRESPONDENTS]


def test_display_participants_keep_first_arrival_order_and_the_first_name():
    shown: list[dict] = []
    for name, address in [("Carol", "c@x"), ("Dave", "d@x"), ("C.", "c@x"), ("", "")]:
        shown = participants_add(shown, name=name, address=address)

    assert shown == [{"name": "Carol", "address": "c@x"}, {"name": "Dave", "address": "d@x"}]
    for i in range(MAX_DISPLAY_PARTICIPANTS + 5):
        shown = participants_add(shown, name="", address=f"p{i}@x")
    assert len(shown) == MAX_DISPLAY_PARTICIPANTS


@pytest.mark.django_db
def test_an_older_message_arriving_late_moves_only_the_first_date():
    thread = thread_create(mailbox_id=1, subject="Plan")
    newer = SummaryDelta(WHEN, True, False, False, "newest", "Carol", "c@x", ("c@x",))
    older = SummaryDelta(WHEN.replace(day=1), False, True, True, "older", "Dave", "d@x", ("d@x", "e@x"))

    thread_add_message_summary(thread_id=thread.pk, delta=newer)
    summary = thread_add_message_summary(thread_id=thread.pk, delta=older)

    assert (summary.snippet, summary.last_message_at, summary.first_message_at) == ("newest", WHEN, older.date)
    assert (summary.message_count, summary.unread_count, summary.starred_count, summary.has_attachments) == (
        2,
        1,
        1,
        True,
    )
    assert summary.correspondents == ["c@x", "d@x", "e@x"]


@pytest.mark.django_db
def test_messages_with_the_same_date_show_the_snippet_of_the_last_to_arrive(mailbox):
    first = deliver(mailbox, "a@x", "Plan", body="first words")
    deliver(mailbox, "b@x", "Re: Plan", in_reply_to="a@x", body="second words")

    assert thread_of(first).snippet == "second words"
    assert_no_drift(mailbox)
