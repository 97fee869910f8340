"""How well conversations are threaded, measured on a real mailing-list archive.

Reads an mbox, derives the ground truth from the archive's own headers (the connected components of
Message-ID + In-Reply-To + References, ids missing from the archive acting as ghost nodes; or reads
it from a ``.threads.csv`` in the same format), then feeds the messages through the real pipeline
(parser + ``message_deliver``, so the real resolver) into a fresh bench database (dropped at the
end), once per scenario:

    (a) headers intact, arrival order as archived
    (b) arrival order shuffled
    (c) References removed from 30% of replies
    (d) both In-Reply-To and References removed from 30% of replies
    (e) as (d), plus list tags and reply prefixes mangled in 10% of subjects

and prints pairwise same-thread precision, recall and F1, beside a plain RFC 5256 REFERENCES
(JWZ) threader with base-subject grouping run on the same mutated input. Randomness is seeded.

    .venv/bin/python bench/threading_eval.py ARCHIVE.mbox [--csv THREADS.csv] [--seed 1] [--runs 1]
        [--scenarios abcde] [--explain]

``--explain`` lists, per run, every true thread the resolver split and every thread it fused, with
each piece's messages (arrival position, why they joined, the threading headers they kept), so the
cause of each lost pair can be read off.
"""

import argparse
import csv
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

SCENARIOS = {
    "a": "headers intact, archived order",
    "b": "arrival order shuffled",
    "c": "References removed from 30% of replies",
    "d": "In-Reply-To + References removed from 30%",
    "e": "(d) + tags/prefixes mangled in 10%",
}
TARGETS = {"a": 1.0, "b": 1.0, "c": 0.995, "d": 0.97, "e": 0.95}
STRIPPED_SHARE = 0.30
MANGLED_SHARE = 0.10
_ID = re.compile(r"<([^<>\s]+)>")


# --- The archive and its ground truth ------------------------------------------------------


@dataclass(frozen=True)
class Headers:
    """The threading headers one message carries in one scenario."""

    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    subject: str
    list_id: str = ""

    @property
    def is_reply(self) -> bool:
        return bool(self.in_reply_to or self.references)


def archive_read(path: Path) -> list[bytes]:
    """The raw messages of an mbox, in archived order."""
    from mailsite.stdlib_mailbox import stdlib_mailbox

    box = stdlib_mailbox().mbox(str(path), create=False)
    try:
        return [box.get_bytes(key) for key in box.iterkeys()]
    finally:
        box.close()


def header_truth(raws: Sequence[bytes]) -> list[str]:
    """Thread key per message: its connected component of Message-ID, In-Reply-To and References ids.

    Read from the raw headers, independently of the product's parser. A message without a
    Message-ID is a node of its own.
    """
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    own_ids = []
    for index, raw in enumerate(raws):
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
        own = (_ID.findall(str(headers.get("Message-ID") or "")) or [f"\x00message-{index}"])[0]
        linked = _ID.findall(str(headers.get("In-Reply-To") or "")) + _ID.findall(str(headers.get("References") or ""))
        for other in linked:
            parent[find(other)] = find(own)
        find(own)
        own_ids.append(own)
    return [find(own) for own in own_ids]


def csv_truth(path: Path, count: int) -> list[str]:
    """The ``thread_id`` column of a ``.threads.csv``, by archive index."""
    with path.open(newline="") as handle:
        by_index = {int(row["index"]): row["thread_id"] for row in csv.DictReader(handle)}
    if sorted(by_index) != list(range(count)):
        raise SystemExit(f"{path} does not describe the {count} messages of the archive")
    return [by_index[i] for i in range(count)]


# --- Scoring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float


def pairwise_scores(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> Scores:
    """Pairwise same-thread precision and recall: over all pairs of messages, the pairs put in one
    thread by the prediction that are in one thread in the truth, and vice versa."""
    if len(truth) != len(predicted):
        raise ValueError("truth and prediction must label the same messages")

    def pairs(sizes: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in sizes.values())

    both = pairs(Counter(zip(truth, predicted, strict=True)))
    predicted_pairs, true_pairs = pairs(Counter(predicted)), pairs(Counter(truth))
    precision = both / predicted_pairs if predicted_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1)


# --- Scenarios ------------------------------------------------------------------------------

# Reply prefixes as other clients write them, and the forms a list tag takes when clients and
# gateways rewrite it.
PREFIX_VARIANTS = (
    "RE: ",
    "re: ",
    "Re[2]: ",
    "Re(3): ",
    "RE : ",
    "Re: Re: ",
    "AW: ",
    "SV: ",
    "Antw: ",
    "RIF: ",
    "Odp: ",
    "Réf : ",
    "回复\uff1a",  # full-width colon
    "Ответ: ",
    "FW: ",
    "Fwd: ",
)
_REPLY_PREFIX = re.compile(r"^((?:\[[^\[\]]*\]\s*)*)(re|fwd?|fw)\s*:\s*", re.IGNORECASE)
_TAG = re.compile(r"\[[^\[\]]{1,60}\]\s*")


def list_tag(list_id: str) -> str:
    """The tag a list software puts on subjects: ``[name]`` for list id ``name.host``."""
    return f"[{list_id.split('.', 1)[0]}]" if list_id else ""


def subject_mangle(subject: str, *, tag: str, rng: random.Random) -> str:
    """Rewrite a subject the way another client or gateway might: a different reply prefix, the list
    tag moved, dropped, doubled or re-cased, white space changed. Always changes something."""
    operations = [_space_mangle]
    if _REPLY_PREFIX.match(subject):
        operations.append(_prefix_mangle)
    if tag and tag.lower() in subject.lower():
        operations += [_tag_drop, _tag_recase, _tag_move, _tag_double]
    mangled = subject
    for operation in rng.sample(operations, k=min(len(operations), rng.choice((1, 2)))):
        mangled = operation(mangled, tag, rng)
    return mangled if mangled != subject else subject + " "


def _space_mangle(subject: str, tag: str, rng: random.Random) -> str:
    return rng.choice((subject.replace(" ", "  ", 1), f" {subject}\t", subject.replace(" ", "\t", 1)))


def _prefix_mangle(subject: str, tag: str, rng: random.Random) -> str:
    return _REPLY_PREFIX.sub(lambda m: m.group(1) + rng.choice(PREFIX_VARIANTS), subject, count=1)


def _tag_drop(subject: str, tag: str, rng: random.Random) -> str:
    return re.sub(re.escape(tag) + r"\s*", "", subject, count=1, flags=re.IGNORECASE)


def _tag_recase(subject: str, tag: str, rng: random.Random) -> str:
    return re.sub(re.escape(tag), rng.choice((tag.lower(), tag.upper())), subject, count=1, flags=re.IGNORECASE)


def _tag_move(subject: str, tag: str, rng: random.Random) -> str:
    without = _tag_drop(subject, tag, rng)
    prefix = _REPLY_PREFIX.match(without)
    if prefix and rng.random() < 0.5:  # after the reply prefix instead of before it
        return without[: prefix.end()] + tag + " " + without[prefix.end() :]
    return f"{tag} {without}"


def _tag_double(subject: str, tag: str, rng: random.Random) -> str:
    return f"{tag} {subject}"


@dataclass(frozen=True)
class Scenario:
    order: list[int]  # archive indexes in arrival order
    headers: list[Headers]  # by archive index


def scenario_build(name: str, original: Sequence[Headers], *, seed: int) -> Scenario:
    """The arrival order and headers of scenario ``name`` ("a" to "e"), seeded."""
    rng = random.Random(f"{seed}:{name}")
    order = list(range(len(original)))
    headers = list(original)
    if name == "b":
        rng.shuffle(order)
    if name in ("c", "d", "e"):
        replies = [i for i, h in enumerate(original) if h.is_reply]
        for i in rng.sample(replies, round(STRIPPED_SHARE * len(replies))):
            in_reply_to = headers[i].in_reply_to if name == "c" else ""
            headers[i] = replace(headers[i], in_reply_to=in_reply_to, references=())
    if name == "e":
        for i in rng.sample(order, round(MANGLED_SHARE * len(order))):
            tag = list_tag(headers[i].list_id)
            headers[i] = replace(headers[i], subject=subject_mangle(headers[i].subject, tag=tag, rng=rng))
    return Scenario(order, headers)


# --- The baseline: RFC 5256 REFERENCES (JWZ) with base-subject grouping -----------------------


class _Container:
    __slots__ = ("children", "index", "parent")

    def __init__(self) -> None:
        self.index: int | None = None
        self.parent: _Container | None = None
        self.children: list[_Container] = []


def _is_ancestor(candidate: _Container, node: _Container) -> bool:
    while node is not None:
        if node is candidate:
            return True
        node = node.parent
    return False


def _link(parent: _Container, child: _Container) -> None:
    child.parent = parent
    parent.children.append(child)


def _unlink(child: _Container) -> None:
    child.parent.children.remove(child)
    child.parent = None


def rfc5256_threads(headers: Sequence[Headers], order: Sequence[int]) -> dict[int, int]:
    """Thread number per archive index, by RFC 5256 section 3 REFERENCES steps 1 to 5."""
    table: dict[str, _Container] = {}
    for i in order:
        h = headers[i]
        own = table.setdefault(h.message_id, _Container())
        if own.index is not None:  # a duplicate Message-ID: a message of its own
            own = table.setdefault(f"{h.message_id}\x00{i}", _Container())
        own.index = i
        chain = list(h.references) or ([h.in_reply_to] if h.in_reply_to else [])
        previous = None
        for ref in chain:
            current = table.setdefault(ref, _Container())
            if previous is not None and current.parent is None and not _is_ancestor(current, previous):
                _link(previous, current)
            previous = current
        if own.parent is not None:
            _unlink(own)
        if previous is not None and not _is_ancestor(own, previous):
            _link(previous, own)
    return _group_roots_by_subject(headers, table)


def _group_roots_by_subject(headers: Sequence[Headers], table: dict[str, _Container]) -> dict[int, int]:
    roots = [c for c in {id(c): c for c in table.values()}.values() if c.parent is None]
    group_of_subject: dict[str, int] = {}
    labels: dict[int, int] = {}
    for number, root in enumerate(roots):
        members = _messages_under(root)
        if not members:
            continue
        subject = base_subject(headers[root.index if root.index is not None else members[0]].subject)
        group = group_of_subject.setdefault(subject, number) if subject else number
        labels.update(dict.fromkeys(members, group))
    return labels


def _messages_under(root: _Container) -> list[int]:
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.index is not None:
            found.append(node.index)
        stack.extend(reversed(node.children))
    return found


_RFC_LEADER = re.compile(r"^(?:\[[^\[\]]*\]\s*)*(?:re|fwd?)\s*(?:\[[^\[\]]*\])?\s*:\s*", re.IGNORECASE)
_RFC_BLOB = re.compile(r"^\[[^\[\]]*\]\s*")
_RFC_TRAILER = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)
_RFC_FWD = re.compile(r"^\[fwd:\s*(.*)\]$", re.IGNORECASE)


def base_subject(subject: str) -> str:
    """RFC 5256 section 2.1 base subject: "re"/"fw"/"fwd" leaders, blobs, "(fwd)" trailers, [fwd: ] wrappers."""
    text = re.sub(r"\s+", " ", subject).strip()
    while True:
        while (trimmed := _RFC_TRAILER.sub("", text)) != text:
            text = trimmed
        while True:
            before = text
            text = _RFC_LEADER.sub("", text).lstrip()
            blob = _RFC_BLOB.match(text)
            if blob and text[blob.end() :].strip():
                text = text[blob.end() :]
            if text == before:
                break
        wrapped = _RFC_FWD.match(text)
        if not wrapped:
            return text.casefold()
        text = wrapped.group(1).strip()


# --- Ours: the real pipeline ------------------------------------------------------------------


def ours_threads(mailbox, scenario: Scenario, parsed: list, blobs: list) -> tuple[dict[int, int], dict[int, str]]:  # noqa: ANN001
    """Deliver the scenario's messages in order into ``mailbox``; thread id and reason per index."""
    from mailbox.models import Label, Message
    from mailbox.services import message_deliver

    message_of: dict[int, int] = {}
    for i in scenario.order:
        h = scenario.headers[i]
        variant = replace(parsed[i], in_reply_to=h.in_reply_to, references=list(h.references), subject=h.subject)
        delivered = message_deliver(
            mailbox=mailbox, blob=blobs[i], parsed=variant, source_tag="eval", label_roles=(Label.Role.INBOX,)
        )
        message_of[i] = delivered.message.pk
    rows = {
        pk: (thread, reason)
        for pk, thread, reason in Message.objects.filter(mailbox=mailbox).values_list(
            "pk", "thread_id", "thread_reason"
        )
    }
    return {i: rows[pk][0] for i, pk in message_of.items()}, {i: rows[pk][1] for i, pk in message_of.items()}


def _describer(scenario: Scenario, original: Sequence[Headers], reasons: dict[int, str]) -> Callable[[int], str]:
    position = {index: n for n, index in enumerate(scenario.order)}
    archived = {h.message_id for h in original}

    def describe(i: int) -> str:
        h, o = scenario.headers[i], original[i]
        parent = o.in_reply_to or (o.references[-1] if o.references else "")
        where = "none" if not parent else ("archived" if parent in archived else "not in archive")
        kept = f"irt={'yes' if h.in_reply_to else 'no'} refs={len(h.references)}/{len(o.references)}"
        return f"#{i} arrived {position[i]} {reasons[i]:<9} {kept} parent {where}; {h.subject[:60]!r}"

    return describe


def _use_bench_database() -> str:
    """Switch to a fresh bench database (dropped again at the end); returns the name to switch back to."""
    from django.conf import settings
    from django.db import connection

    name = settings.DATABASES["default"]["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"{name}_threading_eval"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
    return name


def _store_blobs_in(directory: str) -> None:
    from django.conf import settings

    settings.STORAGES = {
        **settings.STORAGES,
        "mail": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": directory, "allow_overwrite": True},
        },
    }


def _prepare(raws: list[bytes]) -> tuple[list, list, list[Headers]]:
    from django.utils import timezone

    from delivery.services import blob_store
    from mailbox.parsing import parse_message

    now = timezone.now()
    parsed = [parse_message(raw, received_at=now) for raw in raws]
    blobs = [blob_store(data=raw) for raw in raws]
    headers = [Headers(p.message_id, p.in_reply_to, tuple(p.references), p.subject, p.list_id) for p in parsed]
    return parsed, blobs, headers


def explain_errors(
    truth: Sequence[Hashable], predicted: Sequence[Hashable], describe: Callable[[int], str]
) -> list[str]:
    """Lines describing each true thread split over several predicted threads, and each predicted thread
    holding several true ones, with the pairs each costs; ``describe(index)`` tells about one message."""
    lines = []
    for kind, whole, part in (("split", truth, predicted), ("fused", predicted, truth)):
        groups: dict[Hashable, dict[Hashable, list[int]]] = {}
        for index, (key, piece) in enumerate(zip(whole, part, strict=True)):
            groups.setdefault(key, {}).setdefault(piece, []).append(index)
        for pieces in groups.values():
            if len(pieces) < 2:
                continue
            sizes = [len(p) for p in pieces.values()]
            lost = (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
            lines.append(f"  {kind}: {len(pieces)} pieces of sizes {sorted(sizes, reverse=True)}, {lost} pairs")
            for piece in sorted(pieces.values(), key=len)[:-1]:
                lines.extend(f"    {describe(i)}" for i in piece)
    return lines


def _row(label: str, ours: Scores, base: Scores, target: float) -> str:
    verdict = "ok" if ours.f1 >= target and (ours.f1 > base.f1 or target == 1.0) else "BELOW"

    def figures(s: Scores) -> str:
        return f"{s.precision:.3f} {s.recall:.3f} {s.f1:.3f}"

    return f"{label:<48} {figures(ours)}   {figures(base)}   {target:.3f} {verdict}"


def _mean(scores: list[Scores]) -> Scores:
    return Scores(*(sum(getattr(s, f) for s in scores) / len(scores) for f in ("precision", "recall", "f1")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--csv", type=Path, help="ground truth in the .threads.csv format (else from the headers)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1, help="seeds per randomised scenario (b-e); means are shown")
    parser.add_argument("--scenarios", default="".join(SCENARIOS), help="which scenarios to run, e.g. cd")
    parser.add_argument("--explain", action="store_true", help="list the threads split or fused, per run")
    args = parser.parse_args()

    import django

    django.setup()
    from mailbox.services import mailbox_create

    raws = archive_read(args.archive)
    truth = header_truth(raws)
    source = "headers"
    if args.csv:
        from_csv = csv_truth(args.csv, len(raws))
        agree = pairwise_scores(from_csv, truth).f1 == 1.0
        truth, source = from_csv, f"{args.csv.name} (agrees with the headers: {'yes' if agree else 'NO'})"
    print(f"{args.archive.name}: {len(raws)} messages, {len(set(truth))} threads; ground truth from {source}")

    blob_dir = tempfile.mkdtemp(prefix="threading-eval-")
    _store_blobs_in(blob_dir)
    old_database_name = _use_bench_database()
    started = time.perf_counter()
    parsed, blobs, original = _prepare(raws)
    print(f"{'scenario':<48} {'ours P     R     F1':<20}  {'baseline P R F1':<20} target")
    delivered = 0
    for name, title in SCENARIOS.items():
        if name not in args.scenarios:
            continue
        seeds = [args.seed] if name == "a" else range(args.seed, args.seed + args.runs)
        ours_runs, base_runs, reasons = [], [], Counter()
        for seed in seeds:
            scenario = scenario_build(name, original, seed=seed)
            mailbox = mailbox_create(address=f"eval-{name}-{seed}@bench.invalid", password=None)
            threads, why = ours_threads(mailbox, scenario, parsed, blobs)
            baseline = rfc5256_threads(scenario.headers, scenario.order)
            indexes = range(len(raws))
            ours_runs.append(pairwise_scores(truth, [threads[i] for i in indexes]))
            base_runs.append(pairwise_scores(truth, [baseline[i] for i in indexes]))
            reasons += Counter(why.values())
            if args.explain:
                lines = explain_errors(truth, [threads[i] for i in indexes], _describer(scenario, original, why))
                print(f"  seed {seed}: F1 {ours_runs[-1].f1:.4f}", *lines, sep="\n")
            delivered += len(raws)
        print(_row(f"({name}) {title}", _mean(ours_runs), _mean(base_runs), TARGETS[name]))
        if len(ours_runs) > 1:
            worst_ours, worst_base = min(s.f1 for s in ours_runs), min(s.f1 for s in base_runs)
            print(f"{'':<4}worst of {len(ours_runs)} seeds: ours F1 {worst_ours:.3f}, baseline F1 {worst_base:.3f}")
        print(f"{'':<4}why messages joined: {dict(sorted(reasons.items()))}")
    elapsed = time.perf_counter() - started
    print(f"{delivered} deliveries in {elapsed:.0f} s ({delivered / elapsed:.0f} messages/s)")
    shutil.rmtree(blob_dir, ignore_errors=True)
    from django.db import connection

    connection.creation.destroy_test_db(old_database_name, verbosity=0, keepdb=False)


if __name__ == "__main__":
    main()
