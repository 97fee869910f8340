"""The query parser on its own: every operator, quoting, negation, OR, dates and malformed input."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mailbox.search.query import All, Any, Not, SearchQueryError, Term, parse_query, tokenize


def test_free_words_are_anded():
    assert parse_query("quarterly report") == All((Term("text", "quarterly"), Term("text", "report")))


def test_a_single_word_is_a_bare_term():
    assert parse_query("invoice") == Term("text", "invoice")


@pytest.mark.parametrize("field", ["from", "to", "cc", "subject", "label"])
def test_text_operators_take_a_word(field):
    assert parse_query(f"{field}:alice") == Term(field, "alice")


def test_operator_names_are_case_insensitive():
    assert parse_query("From:alice IS:Unread") == All((Term("from", "alice"), Term("is", "unread")))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("is:unread", Term("is", "unread")),
        ("is:read", Term("is", "read")),
        ("is:starred", Term("is", "starred")),
        ("has:attachment", Term("has", "attachment")),
        ("in:inbox", Term("in", "inbox")),
        ("in:sent", Term("in", "sent")),
        ("in:spam", Term("in", "spam")),
        ("in:trash", Term("in", "trash")),
        ("in:anywhere", Term("in", "anywhere")),
    ],
)
def test_choice_operators(query, expected):
    assert parse_query(query) == expected


@pytest.mark.parametrize("written", ["2026/03/04", "2026-03-04"])
def test_dates_are_utc_midnight_by_default(written):
    expected = datetime(2026, 3, 4, tzinfo=UTC)
    assert parse_query(f"before:{written}") == Term("before", expected)
    assert parse_query(f"after:{written}") == Term("after", expected)


def test_a_month_means_its_first_day():
    assert parse_query("after:2026/03") == Term("after", datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("zone", "day", "start"),
    [
        # East of UTC the day starts the evening before in UTC, west of it the morning of.
        ("Europe/Paris", "2026/03/02", datetime(2026, 3, 1, 23, 0, tzinfo=UTC)),
        ("Europe/Paris", "2026/07/02", datetime(2026, 7, 1, 22, 0, tzinfo=UTC)),  # summer time
        ("America/New_York", "2026-03-02", datetime(2026, 3, 2, 5, 0, tzinfo=UTC)),
        ("Asia/Kathmandu", "2026/03/02", datetime(2026, 3, 1, 18, 15, tzinfo=UTC)),
        # Clocks skip midnight (00:00 → 01:00): the day starts at the change, 01:00 local.
        ("America/Santiago", "2026/09/06", datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),
        # Clocks go back at midnight (00:00 → 23:00 the day before): 00:00 comes once, after it.
        ("America/Santiago", "2026/04/05", datetime(2026, 4, 5, 4, 0, tzinfo=UTC)),
    ],
)
def test_dates_are_midnight_in_the_users_zone(zone, day, start):
    assert parse_query(f"after:{day}", zone=ZoneInfo(zone)) == Term("after", start)
    assert parse_query(f"before:{day}", zone=ZoneInfo(zone)) == Term("before", start)


def test_quotes_make_one_phrase_term():
    assert parse_query('"exact phrase" here') == All((Term("text", "exact phrase"), Term("text", "here")))


def test_operator_with_quoted_value():
    assert parse_query('subject:"team lunch"') == Term("subject", "team lunch")
    assert parse_query('label:"Project X"') == Term("label", "Project X")


def test_negation_of_words_operators_phrases_and_groups():
    assert parse_query("-spam") == Not(Term("text", "spam"))
    assert parse_query("-from:bob") == Not(Term("from", "bob"))
    assert parse_query('-"out of office"') == Not(Term("text", "out of office"))
    assert parse_query("-(a OR b)") == Not(Any((Term("text", "a"), Term("text", "b"))))


def test_a_dash_inside_a_word_is_not_negation():
    assert parse_query("e-mail") == Term("text", "e-mail")


def test_or_binds_looser_than_and():
    assert parse_query("a b OR c") == Any((All((Term("text", "a"), Term("text", "b"))), Term("text", "c")))


def test_parentheses_group():
    assert parse_query("(from:alice OR from:bob) invoice") == All(
        (Any((Term("from", "alice"), Term("from", "bob"))), Term("text", "invoice"))
    )


def test_lowercase_or_and_explicit_and_are_words_and_noise():
    assert parse_query("this or that") == All((Term("text", "this"), Term("text", "or"), Term("text", "that")))
    assert parse_query("this AND that") == All((Term("text", "this"), Term("text", "that")))


def test_unknown_operators_stay_text():
    assert parse_query("re:meeting") == Term("text", "re:meeting")
    assert parse_query("https://example.com/x") == Term("text", "https://example.com/x")


def test_a_closing_parenthesis_outside_a_group_is_text():
    assert parse_query("f(x)") == Term("text", "f(x)")
    assert tokenize("smile :)")[-1].value == ":)"


def test_non_latin_words():
    assert parse_query("東京 Москва") == All((Term("text", "東京"), Term("text", "Москва")))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Type a word"),
        ("   ", "Type a word"),
        ('"unclosed phrase', "quotation mark is not closed"),
        ("(from:alice", "parenthesis is not closed"),
        ("()", "Type a word"),
        ("alice ()", "Empty parentheses"),
        ("alice (-)", "must come right before"),
        ("OR alice", "OR"),
        ("alice OR", "OR"),
        ("alice OR OR bob", "OR"),
        ("alice -", "letters or digits"),
        ("from:", "needs a value"),
        ("from: alice", "needs a value"),
        ('subject:""', "letters or digits"),
        ("is:important", "is:unread or is:read or is:starred"),
        ("has:pdf", "has:attachment"),
        ("in:nowhere", "in:inbox"),
        ("before:yesterday", "not a date"),
        ("after:2026/13/45", "not a date"),
        ("!!!", "letters or digits"),
        ("x" * 1001, "too long"),
        (" ".join(["w"] * 41), "too many parts"),
    ],
)
def test_malformed_queries_raise_a_message_for_the_user(query, message):
    with pytest.raises(SearchQueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_query(query)


NOW = datetime(2026, 3, 31, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("newer_than:2d", Term("after", datetime(2026, 3, 29, 15, 30, tzinfo=UTC))),
        ("older_than:2D", Term("before", datetime(2026, 3, 29, 15, 30, tzinfo=UTC))),
        # Months and years by the calendar, the day clamped to the shorter month's last.
        ("newer_than:1m", Term("after", datetime(2026, 2, 28, 15, 30, tzinfo=UTC))),
        ("newer_than:13m", Term("after", datetime(2025, 2, 28, 15, 30, tzinfo=UTC))),
        ("older_than:1y", Term("before", datetime(2025, 3, 31, 15, 30, tzinfo=UTC))),
    ],
)
def test_relative_dates_count_back_from_now(query, expected):
    assert parse_query(query, now=NOW) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("larger:10M", Term("larger", 10 * 1024 * 1024)),
        ("size:500k", Term("larger", 500 * 1024)),
        ("smaller:2048", Term("smaller", 2048)),
        ("smaller:1MB", Term("smaller", 1024 * 1024)),
    ],
)
def test_sizes_are_bytes(query, expected):
    assert parse_query(query) == expected


def test_bcc_and_filename_are_operators():
    assert parse_query("bcc:dave filename:pdf") == All((Term("bcc", "dave"), Term("filename", "pdf")))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("category:promotions", "“category:” is not supported"),
        ("deliveredto:me@example.org", "“deliveredto:” is not supported"),
        ("report list:info.example.org", "“list:” is not supported"),
        ("rfc822msgid:abc@x", "“rfc822msgid:” is not supported"),
        ("in:drafts", "Drafts page"),
        ("newer_than:soon", "not a duration"),
        ("older_than:3w", "not a duration"),
        ("older_than:9999y", "too far"),
        ("larger:big", "not a size"),
        ("smaller:", "needs a value"),
    ],
)
def test_unsupported_operators_and_bad_values_are_refused_by_name(query, message):
    with pytest.raises(SearchQueryError, match=message):
        parse_query(query, now=NOW)
