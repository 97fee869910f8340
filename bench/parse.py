"""Parse-only ceilings: how many messages per second one core parses, before any database work.

Compares, on the same messages: the standard library's ``compat32`` parser alone (the floor our
parser builds on), the standard library's modern policy used the obvious way (``policy.default``
with ``get_body``/``iter_attachments`` and header objects: the parser Mailsite had before), and
``mailbox.parsing.parse_message`` (what the pipeline runs).

    .venv/bin/python bench/parse.py [--synthetic 2000] [--no-corpora] [--rounds 3]

Messages: every file of ../shared/corpora/edge-cases and ../shared/corpora/spamassassin when present,
and a synthetic set generated on the fly (see ``synthetic_messages``).
"""

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

CORPORA = REPO.parent / "shared" / "corpora"
CORPUS_FOLDERS = ("edge-cases", "spamassassin")
NOT_INPUT = {"SOURCE.txt", ".missing"}
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def corpus_messages() -> list[bytes]:
    """Every file of the edge-case and SpamAssassin corpora, as bytes (non-messages included: they
    are part of what arrives)."""
    return [
        path.read_bytes()
        for folder in CORPUS_FOLDERS
        if (CORPORA / folder).exists()
        for path in sorted((CORPORA / folder).rglob("*"))
        if path.is_file() and path.name not in NOT_INPUT
    ]


_WORDS = [
    *("quarterly", "numbers", "meeting", "invoice", "travel", "plans", "draft", "review", "lunch", "release"),
    *("notes", "budget", "schedule", "contract", "feedback", "question", "update", "report", "agenda", "minutes"),
]


def synthetic_messages(count: int, *, seed: int = 7, domain: str = "example.test") -> Iterator[bytes]:
    """``count`` realistic messages: one in three a reply in a thread, one in four multipart with
    HTML, one in ten with a small attachment, senders from a pool of 200; deterministic per seed."""
    rng = random.Random(seed)
    threads: list[tuple[str, str]] = []
    for number in range(count):
        sender = f"person{rng.randrange(200)}@senders.example.org"
        message_id = f"synthetic-{seed}-{number}@senders.example.org"
        if threads and rng.random() < 0.33:
            parent_id, subject = rng.choice(threads)
            extra = f"In-Reply-To: <{parent_id}>\r\nReferences: <{parent_id}>\r\n"
            subject = f"Re: {subject}"
        else:
            subject = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(2, 7))).capitalize()
            extra = ""
        threads.append((message_id, subject))
        threads = threads[-500:]
        text = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(20, 300)))
        head = (
            f"From: Person {sender[6:9]} <{sender}>\r\nTo: Bench <bench@{domain}>\r\nSubject: {subject}\r\n"
            f"Date: Mon, 02 Nov 2026 {number % 24:02d}:{number % 60:02d}:00 +0000\r\nMessage-ID: <{message_id}>\r\n"
            f"{extra}MIME-Version: 1.0\r\n"
        )
        yield (head + _synthetic_body(rng, text)).encode()


def _synthetic_body(rng: random.Random, text: str) -> str:
    if rng.random() < 0.1:
        attachment = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789") for _ in range(2_000))
        return (
            "Content-Type: multipart/mixed; boundary=MIX\r\n\r\n"
            "--MIX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{text}\r\n--MIX\r\nContent-Type: application/pdf; name=report.pdf\r\n"
            "Content-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            f"{attachment}\r\n--MIX--\r\n"
        )
    if rng.random() < 0.25:
        return (
            "Content-Type: multipart/alternative; boundary=ALT\r\n\r\n"
            "--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{text}\r\n--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{text}</p>\r\n--ALT--\r\n"
        )
    return f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"


def stdlib_compat32(raw: bytes) -> object:
    return message_from_bytes(raw)


def stdlib_modern(raw: bytes) -> object:
    """The modern policy used the obvious way: header objects, get_body, iter_attachments."""
    msg = message_from_bytes(raw, policy=policy.default)
    fields = [msg.get(name) for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID", "References")]
    body = msg.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if body is not None else ""
    attachments = [part.get_content() for part in msg.iter_attachments()]
    return fields, text, attachments


def ours(raw: bytes) -> object:
    from mailbox.parsing import parse_message

    return parse_message(raw, received_at=NOW)


def measure(parse: Callable[[bytes], object], messages: list[bytes], rounds: int) -> tuple[float, int]:
    """(median messages per second over ``rounds``, messages that raised in the last round)."""
    rates = []
    failures = 0
    for _ in range(rounds):
        failures = 0
        started = time.perf_counter()
        for raw in messages:
            try:
                parse(raw)
            except Exception:  # noqa: BLE001 - counted: the modern policy raises on real mail
                failures += 1
        rates.append(len(messages) / (time.perf_counter() - started))
    return statistics.median(rates), failures


PARSERS = {
    "stdlib compat32 parse alone": stdlib_compat32,
    "stdlib policy.default + get_body (before)": stdlib_modern,
    "mailbox.parsing.parse_message (after)": ours,
}


def report(label: str, messages: list[bytes], rounds: int) -> dict[str, float]:
    size = sum(map(len, messages)) / 1e6
    print(f"\n{label}: {len(messages):,} messages, {size:.1f} MB, median of {rounds} rounds, 1 core")
    rates = {}
    for name, parse in PARSERS.items():
        rate, failures = measure(parse, messages, rounds)
        rates[name] = rate
        note = f"   ({failures} raised)" if failures else ""
        print(f"  {name:<45} {rate:8,.0f} msg/s{note}")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=int, default=2_000, help="synthetic messages (0 for none)")
    parser.add_argument("--no-corpora", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import django

    django.setup()
    print("(timings are noisy while other work runs on this machine)")
    corpus = [] if args.no_corpora else corpus_messages()
    if corpus:
        report("real corpora (edge-cases + spamassassin)", corpus, args.rounds)
    if args.synthetic:
        report("synthetic", list(synthetic_messages(args.synthetic)), args.rounds)


if __name__ == "__main__":
    main()
