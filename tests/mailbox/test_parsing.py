from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailbox.parsing import parse_message
from tests.conftest import SHARED_CORPORA

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_missing_message_id_and_date_get_stable_fallbacks():
    raw = b"From: a@example.org\r\nSubject: no ids\r\n\r\nbody\r\n"
    first = parse_message(raw, received_at=NOW)
    assert first.message_id.endswith("@mailsite.invalid")
    assert parse_message(raw, received_at=NOW + timedelta(days=1)).message_id == first.message_id
    assert first.date == NOW


def test_absurd_date_falls_back_to_the_receive_time():
    raw = b"From: a@example.org\r\nDate: Fri, 01 Jan 2100 00:00:00 +0000\r\n\r\nbody\r\n"
    assert parse_message(raw, received_at=NOW).date == NOW


def test_unknown_charset_and_broken_address_header_do_not_raise():
    raw = (
        b'From: =?unknown-8bit?Q?J=F6rg?= <j@example.org>\r\nCc: "\r\nTo: <\r\nSubject: caf\xe9\r\n'
        b"Content-Type: text/plain; charset=DEFAULT_CHARSET\r\n\r\ncaf\xe9\r\n"
    )
    parsed = parse_message(raw, received_at=NOW)
    assert parsed.sender.address == "j@example.org"
    assert "caf" in parsed.text
    assert parsed.addresses["cc"] == []


def test_references_keep_order_and_in_reply_to_is_the_last_id():
    raw = b"In-Reply-To: <b@x> <c@x>\r\nReferences: <a@x> junk <b@x>\r\n\r\n"
    parsed = parse_message(raw, received_at=NOW)
    assert parsed.references == ["a@x", "b@x"]
    assert parsed.in_reply_to == "c@x"


def test_attachments_and_alternatives_are_separated():
    raw = (
        b"Content-Type: multipart/mixed; boundary=X\r\n\r\n"
        b"--X\r\nContent-Type: multipart/alternative; boundary=Y\r\n\r\n"
        b"--Y\r\nContent-Type: text/plain\r\n\r\nplain &amp; simple\r\n"
        b"--Y\r\nContent-Type: text/html\r\n\r\n<p>rich</p>\r\n--Y--\r\n"
        b"--X\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--X--\r\n"
    )
    parsed = parse_message(raw, received_at=NOW)
    assert parsed.text.strip() == "plain &amp; simple"
    assert parsed.html.strip() == "<p>rich</p>"
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("a.pdf", "application/pdf", b"%PDF-")
    ]
    assert parsed.snippet == "plain & simple"


def _corpus_files() -> list[Path]:
    folders = [SHARED_CORPORA / "edge-cases", SHARED_CORPORA / "spamassassin"]
    return sorted(
        p
        for f in folders
        if f.exists()
        for p in f.rglob("*")
        if p.is_file() and p.suffix not in {".json", ".txt", ".md"}
    )


def test_every_real_corpus_message_parses_without_raising():
    files = _corpus_files()
    if not files:
        pytest.skip("the shared corpora are not beside this clone (CI always has them)")
    for path in files:
        parsed = parse_message(path.read_bytes(), received_at=NOW)
        assert parsed.message_id, path
        assert parsed.size == path.stat().st_size


def test_list_id_is_the_bracketed_identity():
    raw = b"List-Id: Team discussion <Team-List.example.org>\r\n\r\n"
    assert parse_message(raw, received_at=NOW).list_id == "team-list.example.org"


def test_body_line_endings_are_normalised():
    raw = b"Content-Type: text/plain\r\n\r\nline one\r\nline two\r\n"
    assert parse_message(raw, received_at=NOW).text == "line one\nline two\n"


def test_malformed_addresses_are_dropped_not_stored():
    raw = b'To: "quoted"@example.org, ok@example.org, <broken@>, a@b@c\r\n\r\n'
    assert [a.address for a in parse_message(raw, received_at=NOW).addresses["to"]] == ["ok@example.org"]
