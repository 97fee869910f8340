"""Mutated real messages never make the parser raise, hang or return what the database refuses.

Seeds are the real messages in tests/fixtures/mail (see the SOURCE.txt files); hypothesis damages
them the way transport and broken clients do: flipped bytes, truncation, duplicated headers,
mangled boundaries, swapped charsets.
"""

import re
import time
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbox.parsing import ParsedMessage, parse_message

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
SEEDS = sorted(
    p.read_bytes()
    for p in FIXTURES.rglob("*")
    if p.is_file() and p.suffix not in {".json", ".txt", ".md"} and p.name != "COPYING" and p.stat().st_size < 20_000
)
CHARSETS = [b"utf-8", b"DEFAULT_CHARSET", b"GB2312_CHARSET", b"CHINESEBIG5", b"unknown-8bit", b"utf-7", b"utf-16",
            b"iso-2022-jp", b"base64", b"x-\xff\xfe", b"", b'"', b"koi8-r"]  # fmt: skip
PER_MESSAGE_SECONDS = 1.0
_HEADER_LINE = re.compile(rb"^[A-Za-z-]+:[^\r\n]*\r?\n", re.MULTILINE)
_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)', re.IGNORECASE)
_CHARSET = re.compile(rb"charset=\"?[^\";\s]*", re.IGNORECASE)


def _flip_bytes(raw: bytes, data: st.DataObject) -> bytes:
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 20))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    return bytes(mutated)


def _truncate(raw: bytes, data: st.DataObject) -> bytes:
    return raw[: data.draw(st.integers(0, len(raw)))]


def _duplicate_header(raw: bytes, data: st.DataObject) -> bytes:
    lines = list(_HEADER_LINE.finditer(raw))
    if not lines:
        return raw
    line = data.draw(st.sampled_from(lines))
    return raw[: line.end()] + line.group() * data.draw(st.integers(1, 50)) + raw[line.end() :]


def _damage_boundary(raw: bytes, data: st.DataObject) -> bytes:
    found = _BOUNDARY.search(raw)
    if found is None:
        return raw
    boundary = found.group(1)
    damage = data.draw(st.sampled_from(["drop-char", "remove-closing", "swap", "nest"]))
    if damage == "drop-char":
        return raw.replace(boundary, boundary[:-1], data.draw(st.integers(1, 3)))
    if damage == "remove-closing":
        return raw.replace(b"--" + boundary + b"--", b"")
    if damage == "swap":
        return raw.replace(b"--" + boundary, b"--" + boundary[::-1])
    return raw.replace(
        b"--" + boundary + b"\n", b"--" + boundary + b"\nContent-Type: multipart/mixed; boundary=" + boundary + b"\n\n"
    )


def _swap_charsets(raw: bytes, data: st.DataObject) -> bytes:
    return _CHARSET.sub(lambda _: b"charset=" + data.draw(st.sampled_from(CHARSETS)), raw)


MUTATIONS = [_flip_bytes, _truncate, _duplicate_header, _damage_boundary, _swap_charsets]


def _assert_storable(parsed: ParsedMessage) -> None:
    texts = [parsed.message_id, parsed.in_reply_to, parsed.subject, parsed.list_id, parsed.text, parsed.html]
    texts += [*parsed.references, parsed.snippet, parsed.list_unsubscribe]
    texts += [a.name + a.address for addresses in parsed.addresses.values() for a in addresses]
    texts += [a.filename + a.content_type + a.content_id for a in parsed.attachments]
    for text in texts:
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates
    assert len(parsed.message_id) <= 998
    assert all(len(a.filename) <= 255 and len(a.content_type) <= 255 for a in parsed.attachments)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS), mutations=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3), data=st.data()
)
def test_mutated_real_messages_parse_without_raising(seed, mutations, data):
    raw = seed
    for mutate in mutations:
        raw = mutate(raw, data) if raw else raw
    started = time.perf_counter()
    parsed = parse_message(raw, received_at=NOW)
    assert time.perf_counter() - started < PER_MESSAGE_SECONDS
    assert parsed.size == len(raw)
    _assert_storable(parsed)


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=3_000))
def test_arbitrary_bytes_parse_without_raising(raw):
    _assert_storable(parse_message(raw, received_at=NOW))


@settings(max_examples=100, deadline=None)
@given(header=st.text(max_size=300), name=st.sampled_from(["Subject", "From", "To", "Cc", "Message-ID", "Date"]))
def test_arbitrary_header_text_parses_without_raising(header, name):
    raw = f"{name}: {header}\r\n\r\nbody".encode("utf-8", "surrogatepass")
    _assert_storable(parse_message(raw, received_at=NOW))
