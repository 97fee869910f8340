"""The resolver on its own: plain header values in, a thread and a reason out. Each email edge case by name."""

from datetime import UTC, datetime, timedelta

import pytest

from threads.models import Thread, ThreadMessageId
from threads.services import (
    SUBJECT_JOIN_MAX_MESSAGES,
    WINDOW,
    SummaryDelta,
    ThreadSummary,
    thread_add_message_summary,
    thread_place_message,
    thread_summary_set,
    threads_delete,
    threads_mark_manual,
)

MAILBOX = 1
LIST = "dev.lists.example.org"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def place(
    message_id: str,
    subject: str = "Budget",
    *,
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    sender: str = "carol@example.org",
    recipients: tuple[str, ...] = ("dave@example.org",),
    date: datetime = START,
    list_id: str = "",
    is_bulk: bool = False,
    mailbox_id: int = MAILBOX,
):
    """Place a message and fold it into its thread's summary, as the mailbox app does on delivery."""
    placement = thread_place_message(
        mailbox_id=mailbox_id,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=list(references),
        subject=subject,
        list_id=list_id,
        date=date,
        sender=sender,
        recipients=frozenset(recipients),
        is_bulk=is_bulk,
    )
    # No message rows here: absorbed threads are simply dropped, as the mailbox app does after moving them.
    threads_delete(mailbox_id=mailbox_id, thread_ids=list(placement.absorbed_thread_ids))
    parties = {sender} if is_bulk else {sender, *recipients}
    delta = SummaryDelta(date, False, False, False, "", "", sender, tuple(sorted(parties - {""})))
    thread_add_message_summary(thread_id=placement.thread.pk, delta=delta)
    return placement


def threads_of(*message_ids: str) -> set[int]:
    return set(
        ThreadMessageId.objects.filter(mailbox_id=MAILBOX, message_id__in=message_ids).values_list(
            "thread_id", flat=True
        )
    )


pytestmark = pytest.mark.django_db


# --- 1. Headers ---------------------------------------------------------------------------


def test_a_reply_joins_its_parent_by_in_reply_to():
    root = place("root@x")
    reply = place("reply@x", "Re: Budget", in_reply_to="root@x")

    assert (reply.thread.pk, reply.reason) == (root.thread.pk, "reference")
    assert root.reason == "new"


def test_references_alone_thread_a_reply():
    root = place("root@x")

    assert place("reply@x", "Re: Budget", references=("root@x",)).thread.pk == root.thread.pk


def test_the_nearest_ancestor_decides_when_the_chain_crosses_a_manual_split():
    old = place("old@x", "Plans")
    new = place("new@x", "Plans v2")
    threads_mark_manual(mailbox_id=MAILBOX, thread_ids=[new.thread.pk])

    reply = place("reply@x", "Re: Plans v2", references=("old@x", "new@x"))

    assert reply.thread.pk == new.thread.pk
    assert Thread.objects.filter(pk=old.thread.pk).exists(), "a manual thread is never merged automatically"


def test_an_orphan_reply_is_adopted_by_its_late_parent():
    orphan = place("reply@x", "Re: Budget", in_reply_to="root@x", references=("root@x",))
    parent = place("root@x")

    assert parent.thread.pk == orphan.thread.pk
    assert parent.reason == "reference"
    assert ThreadMessageId.objects.get(mailbox_id=MAILBOX, message_id="root@x").seen


def test_a_late_parent_connecting_two_threads_merges_them():
    # b replies to the missing a, c to the missing b's parent... arriving as two separate threads.
    first = place("c@x", "Re: Budget", in_reply_to="b@x", references=("b@x",))
    second = place("a-reply@x", "Re: Budget", in_reply_to="a@x", references=("a@x",))
    assert first.thread.pk != second.thread.pk

    late = place("b@x", "Re: Budget", in_reply_to="a@x", references=("a@x",))

    assert set(late.absorbed_thread_ids) | {late.thread.pk} == {first.thread.pk, second.thread.pk}
    assert threads_of("a@x", "b@x", "c@x", "a-reply@x") == {late.thread.pk}


def test_junk_ids_are_ignored_and_a_self_reference_makes_no_loop():
    placement = place("self@x", "Re: Budget", in_reply_to="self@x", references=("not an id", "no-at-sign", "self@x"))

    assert placement.reason == "new"
    assert set(ThreadMessageId.objects.values_list("message_id", flat=True)) == {"self@x"}


def test_the_same_message_id_twice_lands_in_one_thread():
    # The Sent copy and the list's copy of one message carry the same Message-ID.
    first = place("dup@x", "Budget")

    assert place("dup@x", "[dev] Budget", list_id=LIST).thread.pk == first.thread.pk


def test_ids_are_per_mailbox():
    first = place("root@x")

    other = place("reply@x", "Re: Budget", in_reply_to="root@x", mailbox_id=2)

    assert other.thread.pk != first.thread.pk
    assert other.thread.mailbox_id == 2


# --- 2. Subject, participants, window ------------------------------------------------------


def test_a_reply_without_headers_joins_by_subject_and_participants():
    root = place("root@x", "Budget 2027", sender="carol@example.org")

    reply = place("reply@x", "RE: AW: Budget 2027", sender="dave@example.org", recipients=("carol@example.org",))

    assert (reply.thread.pk, reply.reason) == (root.thread.pk, "subject")


def test_no_subject_join_without_a_shared_participant():
    root = place("root@x", "Budget 2027")

    stranger = place("reply@x", "Re: Budget 2027", sender="eve@example.net", recipients=("frank@example.net",))

    assert stranger.thread.pk != root.thread.pk


def test_no_subject_join_outside_the_window():
    root = place("root@x", "Budget 2027")

    late = place("reply@x", "Re: Budget 2027", date=START + WINDOW + timedelta(days=1))

    assert late.thread.pk != root.thread.pk


def test_an_old_reply_imported_later_joins_the_thread_of_its_time():
    place("old@x", "Budget 2027", date=START - timedelta(days=400))
    current = place("new@x", "Budget 2027", date=START)

    assert place("reply@x", "Re: Budget 2027", date=START + timedelta(days=2)).thread.pk == current.thread.pk


def test_a_message_without_a_reply_prefix_starts_its_own_thread():
    first = place("one@x", "Weekly report")

    assert place("two@x", "Weekly report").thread.pk != first.thread.pk


def test_a_reply_without_headers_arriving_first_is_adopted_by_its_root():
    fragment = place("reply@x", "Re: Budget 2027", date=START + timedelta(hours=2))
    assert fragment.thread.is_fragment

    root = place("root@x", "Budget 2027", date=START)

    assert root.absorbed_thread_ids == (fragment.thread.pk,)
    assert threads_of("reply@x", "root@x") == {root.thread.pk}
    assert not Thread.objects.get(pk=root.thread.pk).is_fragment


def test_a_reply_to_an_unknown_message_adopts_the_fragment_of_its_conversation():
    # The archive starts mid-conversation: neither message's parent is here.
    fragment = place("early@x", "Re: Budget 2027", date=START)

    later = place("later@x", "Re: Budget 2027", references=("missing-root@x",), date=START + timedelta(hours=1))

    assert later.absorbed_thread_ids == (fragment.thread.pk,)


def test_fragments_are_adopted_only_within_the_subject_guardrails():
    other_people = place("a@x", "Re: Budget 2027", sender="eve@example.net", recipients=())
    too_old = place("b@x", "Re: Budget 2027", date=START - WINDOW - timedelta(days=2))

    root = place("root@x", "Budget 2027", date=START + timedelta(hours=1))

    assert root.absorbed_thread_ids == ()
    assert Thread.objects.filter(pk__in=[other_people.thread.pk, too_old.thread.pk]).count() == 2


# --- 3. Guardrails -------------------------------------------------------------------------


@pytest.mark.parametrize("subject", ["(no subject)", "hi", "Question", "test", "", "ok"])
def test_generic_subjects_never_join_by_subject(subject):
    root = place("root@x", subject)

    assert place("reply@x", f"Re: {subject}").thread.pk != root.thread.pk


def test_a_references_header_pointing_elsewhere_blocks_a_subject_join():
    root = place("root@x", "Budget 2027")

    other = place("reply@x", "Re: Budget 2027", references=("unknown-root@elsewhere",))

    assert other.thread.pk != root.thread.pk


def test_a_chain_of_unknown_references_blocks_a_subject_join_however_long():
    root = place("root@x", "Budget 2027")

    other = place("reply@x", "Re: Budget 2027", in_reply_to="b@elsewhere", references=("a@elsewhere", "b@elsewhere"))

    assert other.thread.pk != root.thread.pk


def test_a_reply_whose_in_reply_to_names_a_parent_never_received_joins_by_subject():
    # The parent went to others only, or the client wrote no References: the missing parent says
    # nothing against the conversation the subject and the people point to.
    root = place("root@x", "Budget 2027")

    orphan = place("reply@x", "Re: Budget 2027", in_reply_to="missing@x")

    assert (orphan.thread.pk, orphan.reason) == (root.thread.pk, "subject")
    assert anchors("reply@x", "missing@x") == {"reply@x"}


def test_an_unknown_in_reply_to_joins_by_subject_only_within_the_guardrails():
    root = place("root@x", "Budget 2027")

    stranger = place("reply@x", "Re: Budget 2027", in_reply_to="missing@x", sender="eve@example.net", recipients=())
    generic = place("hi-reply@x", "Re: hi", in_reply_to="missing-hi@x")

    assert stranger.thread.pk != root.thread.pk
    assert generic.reason == "new"


def test_a_reply_with_an_unknown_in_reply_to_arriving_first_is_adopted_by_its_root():
    orphan = place("reply@x", "Re: Budget 2027", in_reply_to="missing@x", date=START + timedelta(hours=2))

    root = place("root@x", "Budget 2027", date=START)

    assert root.absorbed_thread_ids == (orphan.thread.pk,)


# --- 5. Subject joins are provisional ------------------------------------------------------


def anchors(*message_ids: str) -> set[str]:
    rows = ThreadMessageId.objects.filter(mailbox_id=MAILBOX, message_id__in=message_ids)
    return set(rows.values_list("subject_anchor", flat=True))


def test_a_subject_join_confirmed_by_a_later_chain_through_the_missing_parent_becomes_certain():
    place("first@x", "Re: Budget 2027", references=("root@elsewhere",))
    orphan = place("orphan@x", "Re: Budget 2027", in_reply_to="missing@x")

    child = place("child@x", "Re: Budget 2027", references=("root@elsewhere", "missing@x", "orphan@x"))

    assert child.thread.pk == orphan.thread.pk
    assert (child.reason, child.moved_message_ids) == ("reference", ())
    assert anchors("orphan@x", "missing@x", "child@x") == {""}


def test_a_late_parent_belonging_to_another_conversation_takes_its_subject_joined_reply_there():
    # Two conversations of one subject, each joined midway; the orphan guessed the wrong one.
    one = place("one@x", "Re: Budget 2027", references=("root-1@elsewhere",), date=START)
    two = place("two@x", "Re: Budget 2027", references=("root-2@elsewhere",), date=START + timedelta(days=2))
    orphan = place("orphan@x", "Re: Budget 2027", in_reply_to="parent@x", date=START + timedelta(days=2, hours=1))
    assert orphan.thread.pk == two.thread.pk

    parent = place("parent@x", "Re: Budget 2027", references=("root-1@elsewhere",), date=START + timedelta(hours=1))

    assert parent.thread.pk == one.thread.pk
    assert (parent.absorbed_thread_ids, parent.moved_message_ids) == ((), ("orphan@x",))
    assert threads_of("orphan@x", "parent@x", "one@x") == {one.thread.pk}
    assert threads_of("two@x", "root-2@elsewhere") == {two.thread.pk}


def test_a_fork_of_the_same_subject_leaves_the_thread_it_joined_when_its_reply_shows_another_root():
    # The mailbox joins two conversations of one subject midway. The fork names only a parent never
    # received, so it joined the first by subject; its reply's chain shows a root the first never had.
    first = place("first@x", "Re: Budget 2027", references=("root-1@elsewhere", "parent-1@elsewhere"))
    fork = place("fork@x", "Re: Budget 2027", in_reply_to="parent-2@elsewhere")
    assert fork.thread.pk == first.thread.pk

    child = place("child@x", "Re: Budget 2027", references=("root-2@elsewhere", "parent-2@elsewhere", "fork@x"))

    assert child.thread.pk != first.thread.pk
    assert (child.absorbed_thread_ids, child.moved_message_ids) == ((), ("fork@x",))
    assert threads_of("fork@x", "child@x", "parent-2@elsewhere", "root-2@elsewhere") == {child.thread.pk}
    assert threads_of("first@x", "root-1@elsewhere") == {first.thread.pk}


def test_an_unknown_parent_arriving_as_a_new_conversation_takes_its_subject_joined_replies_along():
    root = place("root@x", "Budget 2027")
    orphan = place("orphan@x", "Re: Budget 2027", in_reply_to="other-root@x")
    assert orphan.thread.pk == root.thread.pk

    other_root = place("other-root@x", "Budget 2027")

    assert other_root.thread.pk != root.thread.pk
    assert other_root.moved_message_ids == ("orphan@x",)
    assert threads_of("orphan@x", "other-root@x") == {other_root.thread.pk}


def test_a_missing_parent_arriving_with_only_an_unknown_in_reply_to_of_its_own_stays_with_its_reply():
    # Its own missing parent is no evidence either: the subject join stands, still unconfirmed.
    root = place("root@x", "Budget 2027")
    place("orphan@x", "Re: Budget 2027", in_reply_to="parent@x")

    parent = place("parent@x", "Re: Budget 2027", in_reply_to="grandparent@x")

    assert (parent.thread.pk, parent.moved_message_ids) == (root.thread.pk, ())
    assert anchors("parent@x", "grandparent@x") == {"orphan@x"}


def test_a_headerless_reply_joined_by_subject_moves_when_a_reply_to_it_names_another_conversation():
    one = place("one@x", "Re: Budget 2027", references=("root-1@elsewhere",), date=START)
    two = place("two@x", "Re: Budget 2027", references=("root-2@elsewhere",), date=START + timedelta(days=2))
    stripped = place("stripped@x", "Re: Budget 2027", date=START + timedelta(days=2, hours=1))
    assert (stripped.thread.pk, stripped.reason) == (two.thread.pk, "subject")

    child = place("child@x", "Re: Budget 2027", references=("root-1@elsewhere", "stripped@x"))

    assert (child.thread.pk, child.absorbed_thread_ids, child.moved_message_ids) == (one.thread.pk, (), ("stripped@x",))
    assert threads_of("two@x") == {two.thread.pk}


def test_replies_placed_only_through_a_subject_join_follow_it_when_it_moves():
    one = place("one@x", "Re: Budget 2027", references=("root-1@elsewhere",), date=START)
    two = place("two@x", "Re: Budget 2027", references=("root-2@elsewhere",), date=START + timedelta(days=2))
    place("orphan@x", "Re: Budget 2027", in_reply_to="parent@x", date=START + timedelta(days=2, hours=1))
    answer = place("answer@x", "Re: Budget 2027", in_reply_to="orphan@x", date=START + timedelta(days=2, hours=2))
    assert (answer.thread.pk, answer.reason) == (two.thread.pk, "reference")
    assert anchors("answer@x") == {"orphan@x"}

    parent = place("parent@x", "Re: Budget 2027", references=("root-1@elsewhere",), date=START + timedelta(hours=1))

    assert parent.moved_message_ids == ("answer@x", "orphan@x")
    assert threads_of("orphan@x", "answer@x", "parent@x") == {one.thread.pk}


def test_a_fragment_adopted_by_a_conversation_of_its_subject_leaves_when_headers_name_another():
    stray = place("stray@x", "Re: Budget 2027", date=START + timedelta(hours=2))
    adopter = place("adopter@x", "Budget 2027", date=START)
    assert adopter.absorbed_thread_ids == (stray.thread.pk,)
    one = place("one@x", "Re: Budget 2027", references=("root-1@elsewhere",), date=START + timedelta(hours=1))

    child = place("child@x", "Re: Budget 2027", references=("root-1@elsewhere", "stray@x"))

    assert child.thread.pk == one.thread.pk != adopter.thread.pk
    assert child.moved_message_ids == ("stray@x",)


def test_a_thread_stops_growing_by_subject_past_its_size_cap():
    root = place("root@x", "Budget 2027")
    full = ThreadSummary.of(Thread.objects.get(pk=root.thread.pk))
    thread_summary_set(
        thread_id=root.thread.pk,
        summary=ThreadSummary(**{**full.__dict__, "message_count": SUBJECT_JOIN_MAX_MESSAGES}),
    )

    assert place("reply@x", "Re: Budget 2027").thread.pk != root.thread.pk
    assert place("ref@x", "Re: Budget 2027", in_reply_to="root@x").thread.pk == root.thread.pk


def test_list_mail_joins_only_threads_of_its_list():
    ours = place("root@x", "[dev] Release plan", list_id=LIST)

    other_list = place("r1@x", "Re: Release plan", list_id="users.lists.example.org")
    same_list = place("r2@x", "Re: [dev] Release plan", list_id=LIST)
    tag_mangled = place("r3@x", "[DEV] RE: release   plan", list_id=LIST)

    assert other_list.thread.pk != ours.thread.pk
    assert same_list.thread.pk == tag_mangled.thread.pk == ours.thread.pk


def test_other_bracketed_tags_are_part_of_the_subject():
    v1 = place("v1@x", "[PATCH 1/2] mm: fix leak", list_id=LIST)

    reply_to_v2 = place("r@x", "Re: [PATCH v2 1/2] mm: fix leak", list_id=LIST)

    assert reply_to_v2.thread.pk != v1.thread.pk


def test_a_reply_carrying_another_lists_tag_joins_the_thread_without_it():
    root = place("root@x", "[dev] Release plan", list_id=LIST)

    cross_posted = place("r@x", "Re: [dev] [Board] Release plan", list_id=LIST)

    assert cross_posted.thread.pk == root.thread.pk


def test_the_most_specific_subject_wins_over_a_looser_match():
    discussion = place("d@x", "Fix the scheduler", date=START)
    patch = place("p@x", "[PATCH] Fix the scheduler", date=START + timedelta(hours=1))

    reply = place("r@x", "Re: [PATCH] Fix the scheduler", date=START + timedelta(hours=2))

    assert reply.thread.pk == patch.thread.pk != discussion.thread.pk


# --- Bulk mail: one conversation per correspondent ------------------------------------------

CAMPAIGN_RECIPIENTS = tuple(f"customer{i}@example.net" for i in range(12))


def _campaign():
    return place(
        "sale@shop", "Spring sale", sender="", recipients=CAMPAIGN_RECIPIENTS, is_bulk=True
    )  # sent by the mailbox owner


def _private_reply(message_id: str, customer: str, *, references: tuple[str, ...] = ("sale@shop",)):
    return place(message_id, "Re: Spring sale", references=references, sender=customer, recipients=())


def test_private_replies_to_bulk_mail_are_one_conversation_per_correspondent():
    campaign = _campaign()

    bob = _private_reply("bob1@x", "customer1@example.net")
    carol = _private_reply("carol1@x", "customer2@example.net")
    bob_again = _private_reply("bob2@x", "customer1@example.net")

    assert len({campaign.thread.pk, bob.thread.pk, carol.thread.pk}) == 3
    assert bob_again.thread.pk == bob.thread.pk


def test_the_owners_answer_and_the_follow_up_stay_in_the_correspondents_conversation():
    _campaign()
    bob = _private_reply("bob1@x", "customer1@example.net")

    answer = place(
        "ans@me",
        "Re: Spring sale",
        references=("sale@shop", "bob1@x"),
        sender="",
        recipients=("customer1@example.net",),
    )
    follow_up = _private_reply("bob2@x", "customer1@example.net", references=("sale@shop", "bob1@x", "ans@me"))

    assert answer.thread.pk == follow_up.thread.pk == bob.thread.pk


def test_a_headerless_reply_to_bulk_mail_does_not_join_another_customers_conversation():
    _campaign()
    bob = _private_reply("bob1@x", "customer1@example.net")

    carol = place("carol1@x", "Re: Spring sale", sender="customer2@example.net", recipients=())

    assert carol.thread.pk != bob.thread.pk


def test_list_mail_is_never_bulk_for_branching():
    root = place("root@x", "[dev] Plan", list_id=LIST, recipients=CAMPAIGN_RECIPIENTS, is_bulk=True)

    reply = place(
        "r@x", "Re: [dev] Plan", in_reply_to="root@x", list_id=LIST, sender="customer1@example.net", recipients=()
    )

    assert reply.thread.pk == root.thread.pk


# --- Bounded work ---------------------------------------------------------------------------


def _resolution_queries(n: int) -> list[int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for kind in ("reference", "subject", "new"):
        headers = {
            "reference": {"subject": "Re: Topic 1", "in_reply_to": "t1@x", "references": ["t1@x"]},
            "subject": {"subject": "Re: Topic 2", "in_reply_to": "", "references": []},
            "new": {"subject": f"Fresh {n}", "in_reply_to": "", "references": []},
        }[kind]
        with CaptureQueriesContext(connection) as queries:
            placement = thread_place_message(
                mailbox_id=MAILBOX, message_id=f"{kind}-{n}@x", date=START, sender="carol@example.org", **headers
            )
        assert placement.reason == kind
        counts.append(sum(not q["sql"].startswith(("SAVEPOINT", "RELEASE")) for q in queries.captured_queries))
    return counts


def test_resolution_makes_the_same_few_queries_however_big_the_mailbox():
    for n in range(3):
        place(f"t{n}@x", f"Topic {n}")
    small = _resolution_queries(1)
    for n in range(3, 60):
        place(f"t{n}@x", f"Topic {n % 5}")  # same subjects again: more candidates to consider

    assert _resolution_queries(2) == small
    # One statement reads (locks, map rows, their threads, subject candidates), one writes (the ids,
    # with the new thread's row or the lock of the thread joined by subject).
    assert small == [2, 2, 2]


def test_a_subject_join_whose_thread_vanishes_before_it_is_written_looks_again(monkeypatch):
    from threads.services import resolving

    root = place("root@x", "Budget 2027", sender="carol@example.org")
    real_read = resolving.placement_read
    reads = []

    def read_then_lose_the_thread(**kwargs):  # a user's merge or deletion commits in between
        read = real_read(**kwargs)
        if not reads:
            Thread.objects.filter(pk=root.thread.pk).delete()
        reads.append(read)
        return read

    monkeypatch.setattr(resolving, "placement_read", read_then_lose_the_thread)
    reply = place("reply@x", "Re: Budget 2027", sender="dave@example.org", recipients=("carol@example.org",))

    assert [c.pk for c in reads[0].candidates] == [root.thread.pk]
    assert len(reads) == 2
    assert (reply.reason, reply.thread.is_fragment) == ("new", True)
    assert threads_of("reply@x") == {reply.thread.pk} != {root.thread.pk}
