"""The threading evaluation's own parts: scoring, ground truth, scenario mutations and the baseline."""

import random
from email.message import EmailMessage

import pytest

from bench.threading_eval import (
    Headers,
    Scores,
    base_subject,
    header_truth,
    pairwise_scores,
    rfc5256_threads,
    scenario_build,
    subject_mangle,
)
from tests.conftest import SHARED_CORPORA
from threads.subjects import normalize_subject

LIST = "ksummit-discuss.lists.linuxfoundation.org"


def test_identical_groupings_score_one():
    assert pairwise_scores(["a", "a", "b"], [7, 7, 9]) == Scores(1.0, 1.0, 1.0)


def test_merging_two_threads_costs_precision_only():
    scores = pairwise_scores(["a", "a", "b", "b"], [1, 1, 1, 1])

    assert (scores.precision, scores.recall) == (2 / 6, 1.0)
    assert scores.f1 == pytest.approx(0.5)


def test_splitting_a_thread_costs_recall_only():
    scores = pairwise_scores(["a", "a", "a", "b"], [1, 1, 2, 3])

    assert (scores.precision, scores.recall) == (1.0, 1 / 3)


def test_singletons_alone_are_perfect_and_labels_must_line_up():
    assert pairwise_scores(["a", "b"], [1, 2]).f1 == 1.0
    with pytest.raises(ValueError, match="same messages"):
        pairwise_scores(["a"], [1, 2])


def _raw(message_id: str, *, in_reply_to: str = "", references: str = "") -> bytes:
    msg = EmailMessage()
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = references
    msg["Subject"] = "x"
    return bytes(msg)


def test_ground_truth_joins_through_ids_missing_from_the_archive():
    raws = [
        _raw("a@x", in_reply_to="ghost@x"),
        _raw("b@x", references="<ghost@x> <other@x>"),
        _raw("c@x"),
        _raw("d@x", in_reply_to="c@x"),
    ]

    truth = header_truth(raws)

    assert truth[0] == truth[1] != truth[2] == truth[3]


def _headers() -> list[Headers]:
    tag = "[Ksummit-discuss]"
    rows = [Headers("root@x", "", (), f"{tag} Plan", LIST)]
    rows += [Headers(f"r{i}@x", "root@x", ("root@x",), f"Re: {tag} Plan", LIST) for i in range(20)]
    return rows


def test_the_archived_scenario_changes_nothing_and_the_shuffle_only_the_order():
    original = _headers()

    a, b = scenario_build("a", original, seed=1), scenario_build("b", original, seed=1)

    assert a.order == list(range(21))
    assert a.headers == original
    assert sorted(b.order) == a.order != b.order
    assert b.headers == original
    assert scenario_build("b", original, seed=1).order == b.order, "seeded"


@pytest.mark.parametrize(("name", "keeps_in_reply_to"), [("c", True), ("d", False)])
def test_headers_are_stripped_from_thirty_percent_of_replies(name, keeps_in_reply_to):
    original = _headers()

    stripped = [h for h in scenario_build(name, original, seed=3).headers if not h.references and h.subject[:2] == "Re"]

    assert len(stripped) == 6  # 30% of the 20 replies
    assert all(bool(h.in_reply_to) is keeps_in_reply_to for h in stripped)


def test_mangled_subjects_still_normalise_to_the_same_key():
    rng = random.Random(5)
    subject = "Re: [Ksummit-discuss] [TECH TOPIC] Plan"

    mangled = {subject_mangle(subject, tag="[Ksummit-discuss]", rng=rng) for _ in range(200)}

    assert len(mangled) > 20
    assert {normalize_subject(m, list_id=LIST) for m in mangled} == {"[tech topic] plan"}


def test_scenario_e_mangles_ten_percent_of_subjects():
    original = _headers()

    changed = [
        h
        for h, o in zip(scenario_build("e", original, seed=2).headers, original, strict=True)
        if h.subject != o.subject
    ]

    assert len(changed) == 2  # 10% of 21


def test_rfc5256_base_subject():
    assert base_subject("Re: [list] Fwd: Hello (fwd)") == "hello"
    assert base_subject("[Fwd: Re: Hello]") == "hello"
    assert base_subject("AW: Hello") == "aw: hello"  # only re/fw/fwd are reply leaders in RFC 5256


def test_the_baseline_threads_by_references_then_groups_roots_by_subject():
    headers = [
        Headers("a@x", "", (), "Plan"),
        Headers("b@x", "a@x", ("a@x",), "Re: Plan"),
        Headers("c@x", "", (), "Re: Plan"),  # lost its headers: joined by subject
        Headers("d@x", "", (), "Other"),
    ]

    groups = rfc5256_threads(headers, range(4))

    assert groups[0] == groups[1] == groups[2] != groups[3]


@pytest.mark.skipif(not (SHARED_CORPORA / "mailing-lists").exists(), reason="needs ../shared/corpora/mailing-lists")
def test_header_truth_reproduces_the_archives_csv():
    from bench.threading_eval import archive_read, csv_truth

    folder = SHARED_CORPORA / "mailing-lists"
    mbox = next(folder.glob("*.mbox"))
    raws = archive_read(mbox)

    truth = header_truth(raws)

    assert pairwise_scores(csv_truth(mbox.with_suffix(".threads.csv"), len(raws)), truth).f1 == 1.0
