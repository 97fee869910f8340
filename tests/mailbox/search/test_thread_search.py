"""thread_search against mail delivered through the real pipeline (parse → deliver → index)."""

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailbox.models import Label, Message
from mailbox.search import SearchQueryError, thread_search
from mailbox.search import selectors as search_selectors
from mailbox.search.indexing import documents_backfill
from mailbox.selectors import PAGE_SIZE
from mailbox.services import (
    message_import_raw,
    messages_label_add,
    messages_mark_read,
    messages_star,
    messages_trash,
)
from mailbox.services.labels import label_get_or_create
from mailbox.services.preferences import mailbox_settings_update

pytestmark = pytest.mark.django_db

# The selector picks a plan by the hit count: run every test through each plan, so both give the
# same answers ("probe overflow": the estimate says few, the probe finds more and falls back).
PLANS = {
    "few hits": {"WALK_ESTIMATE": float("inf"), "PROBE_LIMIT": 1_000_000},
    "walk": {"WALK_ESTIMATE": -1, "PROBE_LIMIT": 1000},
    "probe overflow": {"WALK_ESTIMATE": float("inf"), "PROBE_LIMIT": 1},
}


@pytest.fixture(autouse=True, params=PLANS.keys())
def plan(request, monkeypatch):
    for name, value in PLANS[request.param].items():
        monkeypatch.setattr(search_selectors, name, value)
    return request.param


_counter = iter(range(1_000_000))


def deliver(
    mailbox,
    subject: str = "Hello",
    body: str = "Nothing much.",
    *,
    sender: str = "Carol Jones <carol@example.org>",
    to: str = "",
    cc: str = "",
    date: str = "Mon, 02 Nov 2026 10:00:00 +0000",
    html: str = "",
    attachment: bytes = b"",
    label_roles: tuple[str, ...] = (Label.Role.INBOX,),
    in_reply_to: str = "",
) -> Message:
    n = next(_counter)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to or mailbox.address
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Message-ID"] = f"<search-{n}@example.org>"
    msg["Date"] = date
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if html:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
    if attachment:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="budget-2027.pdf")
    return message_import_raw(mailbox=mailbox, raw=bytes(msg), source_tag="test", label_roles=label_roles).message


def subjects(mailbox, query: str) -> set[str]:
    return {thread.subject for thread in thread_search(mailbox=mailbox, query=query).threads}


def test_free_words_match_subject_body_and_participants(mailbox):
    deliver(mailbox, "Quarterly numbers", "See attached.")
    deliver(mailbox, "Lunch", "The quarterly review moved to Friday.")
    deliver(mailbox, "Ping", "Hi", sender="Quarterly Bot <bot@example.org>")
    deliver(mailbox, "Unrelated", "Nothing here.")

    assert subjects(mailbox, "quarterly") == {"Quarterly numbers", "Lunch", "Ping"}
    assert subjects(mailbox, "QUARTERLY friday") == {"Lunch"}
    assert subjects(mailbox, "carol@example.org") == {"Quarterly numbers", "Lunch", "Unrelated"}


def test_exact_phrase_needs_the_words_in_order(mailbox):
    deliver(mailbox, "A", "the red car is fast")
    deliver(mailbox, "B", "the car is red")

    assert subjects(mailbox, '"red car"') == {"A"}
    assert subjects(mailbox, "red car") == {"A", "B"}


def test_negation_and_or(mailbox):
    deliver(mailbox, "Apples", "apples and pears")
    deliver(mailbox, "Pears", "only pears")
    deliver(mailbox, "Plums", "plums")

    assert subjects(mailbox, "pears -apples") == {"Pears"}
    assert subjects(mailbox, "apples OR plums") == {"Apples", "Plums"}
    assert subjects(mailbox, "-pears") == {"Plums"}
    assert subjects(mailbox, "(apples OR plums) -subject:plums") == {"Apples"}


def test_address_operators_tell_from_to_and_cc_apart(mailbox):
    deliver(mailbox, "From Dave", sender="Dave Smith <dave.smith@corp.example>")
    deliver(mailbox, "Dave in To", to=f"{mailbox.address}, Dave <dave.smith@corp.example>")
    deliver(mailbox, "Dave in Cc", cc="Dave Smith <dave.smith@corp.example>")

    assert subjects(mailbox, "from:dave") == {"From Dave"}
    assert subjects(mailbox, "from:dave.smith@corp.example") == {"From Dave"}
    assert subjects(mailbox, "from:corp.example") == {"From Dave"}
    assert subjects(mailbox, 'from:"Dave Smith"') == {"From Dave"}
    assert subjects(mailbox, "to:dave") == {"Dave in To"}
    assert subjects(mailbox, "cc:smith") == {"Dave in Cc"}
    assert subjects(mailbox, "dave") == {"From Dave", "Dave in To", "Dave in Cc"}


def test_from_me_means_the_mailbox_address(mailbox):
    deliver(mailbox, "Mine", sender=f"Alice <{mailbox.address}>", to="carol@example.org")
    deliver(mailbox, "Theirs")

    assert subjects(mailbox, "from:me") == {"Mine"}
    assert subjects(mailbox, "to:me") == {"Theirs"}


def test_subject_operator_ignores_the_body(mailbox):
    deliver(mailbox, "Invoice 42", "pay soon")
    deliver(mailbox, "Reminder", "about the invoice")

    assert subjects(mailbox, "subject:invoice") == {"Invoice 42"}
    assert subjects(mailbox, 'subject:"invoice 42"') == {"Invoice 42"}


def test_labels_by_name_quoted_or_hyphenated(mailbox):
    tagged = deliver(mailbox, "Tagged")
    deliver(mailbox, "Plain")
    messages_label_add(
        mailbox=mailbox, message_ids=[tagged.id], label=label_get_or_create(mailbox=mailbox, name="Project X")
    )

    assert subjects(mailbox, 'label:"project x"') == {"Tagged"}
    assert subjects(mailbox, "label:Project-X") == {"Tagged"}
    assert subjects(mailbox, "label:nosuchlabel") == set()


def test_flags_and_attachments(mailbox):
    read = deliver(mailbox, "Read one")
    starred = deliver(mailbox, "Starred one")
    deliver(mailbox, "With file", attachment=b"%PDF-1.4 fake")
    messages_mark_read(mailbox=mailbox, message_ids=[read.id])
    messages_star(mailbox=mailbox, message_ids=[starred.id])

    assert subjects(mailbox, "is:read") == {"Read one"}
    assert subjects(mailbox, "is:unread") == {"Starred one", "With file"}
    assert subjects(mailbox, "is:starred") == {"Starred one"}
    assert subjects(mailbox, "has:attachment") == {"With file"}
    assert subjects(mailbox, "budget") == {"With file"}, "attachment file names are searchable"


def test_spam_and_trash_are_left_out_unless_asked_for(mailbox):
    deliver(mailbox, "Inbox offer", "offer")
    deliver(mailbox, "Spam offer", "offer", label_roles=(Label.Role.SPAM,))
    trashed = deliver(mailbox, "Trashed offer", "offer")
    messages_trash(mailbox=mailbox, message_ids=[trashed.id])

    assert subjects(mailbox, "offer") == {"Inbox offer"}
    assert subjects(mailbox, "offer in:spam") == {"Spam offer"}
    assert subjects(mailbox, "offer in:trash") == {"Trashed offer"}
    assert subjects(mailbox, "offer in:anywhere") == {"Inbox offer", "Spam offer", "Trashed offer"}
    assert subjects(mailbox, "offer in:inbox") == {"Inbox offer"}


def test_in_sent(mailbox):
    deliver(mailbox, "Sent note", sender=f"Alice <{mailbox.address}>", label_roles=(Label.Role.SENT,))
    deliver(mailbox, "Received note")

    assert subjects(mailbox, "in:sent") == {"Sent note"}


def test_before_and_after_split_at_utc_midnight_without_a_time_zone(mailbox):
    deliver(mailbox, "Early", date="Sun, 01 Mar 2026 23:59:00 +0000")
    deliver(mailbox, "Late", date="Mon, 02 Mar 2026 00:00:00 +0000")

    assert subjects(mailbox, "before:2026/03/02") == {"Early"}
    assert subjects(mailbox, "after:2026/03/02") == {"Late"}
    assert subjects(mailbox, "after:2026-03-01 before:2026-03-03") == {"Early", "Late"}


def test_before_and_after_split_at_midnight_in_the_mailboxs_time_zone(mailbox):
    mailbox_settings_update(mailbox=mailbox, display_name="", keyboard_shortcuts=True, timezone="Asia/Tokyo")
    # Tokyo is UTC+9: its 2 March starts at 1 March 15:00 UTC.
    deliver(mailbox, "Last of the 1st", date="Sun, 01 Mar 2026 14:59:59 +0000")  # 23:59:59 in Tokyo
    deliver(mailbox, "First of the 2nd", date="Sun, 01 Mar 2026 15:00:00 +0000")  # 00:00 in Tokyo
    deliver(mailbox, "Late on the 2nd", date="Mon, 02 Mar 2026 23:30:00 +0900")

    assert subjects(mailbox, "before:2026/03/02") == {"Last of the 1st"}
    assert subjects(mailbox, "after:2026/03/02") == {"First of the 2nd", "Late on the 2nd"}
    assert subjects(mailbox, "after:2026/03/02 before:2026/03/03") == {"First of the 2nd", "Late on the 2nd"}
    assert subjects(mailbox, "after:2026/03/03") == set()


def test_a_zone_west_of_utc_moves_the_boundary_later(mailbox):
    mailbox_settings_update(mailbox=mailbox, display_name="", keyboard_shortcuts=True, timezone="America/New_York")
    deliver(mailbox, "Evening of the 1st", date="Mon, 02 Mar 2026 04:59:00 +0000")  # 23:59 in New York
    deliver(mailbox, "Morning of the 2nd", date="Mon, 02 Mar 2026 05:00:00 +0000")  # 00:00 in New York

    assert subjects(mailbox, "before:2026/03/02") == {"Evening of the 1st"}
    assert subjects(mailbox, "after:2026/03/02") == {"Morning of the 2nd"}


def test_html_only_mail_is_searched_by_its_visible_text(mailbox):
    deliver(mailbox, "Newsletter", html="<style>.hidden{}</style><p>Spring <b>sale</b> today</p>")

    assert subjects(mailbox, '"spring sale"') == {"Newsletter"}
    assert subjects(mailbox, "hidden") == set()


@pytest.mark.parametrize(
    ("body", "query"),
    [
        ("Rendez-vous au café à Montréal", "cafe montreal"),
        ("Rendez-vous au cafe", "café"),
        ("Встреча в Москве завтра", "москве"),
        ("Συνάντηση την Τρίτη", "τριτη"),
        ("会議は東京都で行います", "東京"),
        ("会議は東京都で行います", '"東京都で"'),
        ("서울에서 만나요", "서울"),
        ("مرحبا بالعالم", "مرحبا"),
        ("नमस्ते दुनिया", "नमस्ते"),
        ("Grüße aus Köln", "grusse koln"),
    ],
)
def test_multilingual_text(mailbox, body, query):
    deliver(mailbox, "Multilingual", body)
    deliver(mailbox, "Other", "something else entirely")

    assert subjects(mailbox, query) == {"Multilingual"}


def test_cjk_characters_out_of_order_do_not_match(mailbox):
    deliver(mailbox, "Tokyo", "東京都")

    assert subjects(mailbox, "京東") == set()


def test_a_thread_appears_once_however_many_messages_match(mailbox):
    first = deliver(mailbox, "Plan", "draft plan")
    deliver(mailbox, "Re: Plan", "revised plan", in_reply_to=first.message_id)

    page = thread_search(mailbox=mailbox, query="plan")
    assert len(page.threads) == 1
    assert page.threads[0].message_count == 2


def test_keyset_pages_cover_every_match_once_newest_first(mailbox):
    for n in range(PAGE_SIZE + 3):
        deliver(mailbox, f"Match {n}", "needle", date=f"Mon, 02 Nov 2026 10:{n // 60:02d}:{n % 60:02d} +0000")
    deliver(mailbox, "Miss", "haystack")

    first = thread_search(mailbox=mailbox, query="needle")
    second = thread_search(mailbox=mailbox, query="needle", older_than=first.older)

    assert len(first.threads) == PAGE_SIZE
    assert [t.subject for t in second.threads] == ["Match 2", "Match 1", "Match 0"]
    assert second.older is None
    dates = [t.last_message_at for t in first.threads + second.threads]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize(
    "query",
    [
        "secret",
        '"secret plan"',
        "from:mallory",
        "to:bob",
        "subject:secret",
        "label:shared",
        "in:inbox",
        "in:anywhere",
        "is:unread",
        "has:attachment",
        "after:2000/01/01",
        "-nothing",
        "secret OR plan",
    ],
)
def test_another_mailbox_never_shows(mailbox, other_mailbox, query):
    theirs = deliver(
        other_mailbox, "Secret plan", "secret plan", sender="Mallory <mallory@example.org>", attachment=b"x"
    )
    messages_label_add(
        mailbox=other_mailbox, message_ids=[theirs.id], label=label_get_or_create(mailbox=other_mailbox, name="shared")
    )
    label_get_or_create(mailbox=mailbox, name="shared")

    assert thread_search(mailbox=mailbox, query=query).threads == []
    assert thread_search(mailbox=other_mailbox, query=query).threads, "the query does find the mail in its mailbox"


@pytest.mark.parametrize("query", ['scoped label:x in:inbox -"y z" OR from:q', "(scoped OR from:q) label:x -in:inbox"])
def test_every_search_query_is_scoped_by_mailbox_id(mailbox, query):
    deliver(mailbox, "Scoped")
    with CaptureQueriesContext(connection) as captured:
        thread_search(mailbox=mailbox, query=query)
    statements = [q["sql"] for q in captured.captured_queries]
    assert 2 <= len(statements) <= 4
    assert all(f"m.mailbox_id = {mailbox.id}" in sql for sql in statements if "jit" not in sql)
    sql = statements[-1]
    assert f"t.mailbox_id = {mailbox.id}" in sql
    assert sql.count(f"ml.mailbox_id = {mailbox.id}") == sql.count("mailbox_messagelabel ml") >= 3
    assert sql.count(f"tl.mailbox_id = {mailbox.id}") == sql.count("mailbox_threadlabel tl")
    assert len(re.findall(rf"\bl\.mailbox_id = {mailbox.id}\b", sql)) == sql.count("mailbox_label l") >= 3


def test_thread_summaries_narrow_the_walk(mailbox):
    """Required flags, folders and dates are also checked on the thread row, so a walk skips
    threads that cannot match without reading their messages."""
    deliver(mailbox, "Scoped")
    with CaptureQueriesContext(connection) as captured:
        thread_search(mailbox=mailbox, query="is:starred is:unread has:attachment in:spam label:x after:2026/01/01")
    sql = captured.captured_queries[-1]["sql"]
    for test in ("t.starred_count > 0", "t.unread_count > 0", "t.has_attachments", "t.last_message_at >= "):
        assert test in sql
    assert sql.count("mailbox_threadlabel tl") == 2


@pytest.mark.parametrize("query", ["common", "is:unread"])
def test_statements_do_not_grow_with_the_results(mailbox, query):
    def statements() -> int:
        with CaptureQueriesContext(connection) as captured:
            thread_search(mailbox=mailbox, query=query)
        return len(captured.captured_queries)

    deliver(mailbox, "One", "common")
    few = statements()
    for n in range(PAGE_SIZE + 1):
        deliver(mailbox, f"Many {n}", "common", date=f"Mon, 02 Nov 2026 11:{n // 60:02d}:{n % 60:02d} +0000")
    assert len(thread_search(mailbox=mailbox, query=query).threads) == PAGE_SIZE
    # Bounded, not equal: a probe that finds too many hits is followed by the walk, in the
    # transaction that switches JIT off (one statement more than the few-hits page).
    assert few <= statements() <= 4


def test_only_a_walk_switches_jit_off_so_a_rare_word_costs_three_round_trips(mailbox, plan):
    """JIT is off (``SET LOCAL``, hence a transaction: two round trips more) only for the walk,
    costed on the whole thread index; a few-hits page is estimate, probe, page."""
    deliver(mailbox, "Rare", "zebra")
    deliver(mailbox, "Rare too", "zebra")  # two hits: more than the "probe overflow" plan's limit
    with CaptureQueriesContext(connection) as captured:
        thread_search(mailbox=mailbox, query="zebra")
    statements = [q["sql"] for q in captured.captured_queries]
    expected = {
        "few hits": ["EXPLAIN", "SELECT m.id", "SELECT t.*"],
        "walk": ["EXPLAIN", "SET LOCAL jit", "SELECT t.*"],
        "probe overflow": ["EXPLAIN", "SELECT m.id", "SET LOCAL jit", "SELECT t.*"],
    }[plan]
    assert [sql.strip()[: len(start)] for sql, start in zip(statements, expected, strict=True)] == expected


def test_malformed_query_raises_the_user_message(mailbox):
    with pytest.raises(SearchQueryError, match="not closed"):
        thread_search(mailbox=mailbox, query='"open')


def test_backfill_writes_the_documents_delivery_writes(mailbox):
    message = deliver(mailbox, "Café plans", "東京 meeting", cc="Dave <dave@corp.example>", attachment=b"x")
    delivered = Message.objects.filter(pk=message.pk).values_list("search_document", "address_document").get()
    Message.objects.filter(pk=message.pk).update(search_document=None, address_document=None)
    assert subjects(mailbox, "cafe") == set()

    assert documents_backfill() == 1

    assert Message.objects.filter(pk=message.pk).values_list("search_document", "address_document").get() == delivered
    assert subjects(mailbox, "cafe cc:dave") == {"Café plans"}
    assert documents_backfill() == 0


def test_overlong_body_and_nul_characters_do_not_break_delivery(mailbox):
    deliver(mailbox, "Huge", "start " + "word " * 100_000 + "\x00 tail")

    assert subjects(mailbox, "start") == {"Huge"}
    assert datetime.now(UTC) > Message.objects.get(subject="Huge").received_at


def test_filename_matches_attachment_names_only(mailbox):
    deliver(mailbox, "With file", "see attached", attachment=b"%PDF-1.4 x")
    deliver(mailbox, "Budget talk", "the budget pdf is coming")

    assert subjects(mailbox, "filename:budget") == {"With file"}
    assert subjects(mailbox, "filename:pdf") == {"With file"}
    assert subjects(mailbox, "budget") == {"With file", "Budget talk"}


def test_bcc_matches_blind_copies_only(mailbox):
    sent = EmailMessage()
    sent["From"] = mailbox.address
    sent["To"] = "carol@example.org"
    sent["Bcc"] = "Dave <dave@corp.example>"
    sent["Subject"] = "Blind copy"
    sent["Message-ID"] = "<bcc-1@example.org>"
    sent["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    sent.set_content("hi")
    message_import_raw(mailbox=mailbox, raw=bytes(sent), source_tag="test", label_roles=(Label.Role.SENT,))
    deliver(mailbox, "Dave copied", cc="Dave <dave@corp.example>")

    assert subjects(mailbox, "bcc:dave") == {"Blind copy"}
    assert subjects(mailbox, "bcc:dave@corp.example in:sent") == {"Blind copy"}


def test_larger_and_smaller_compare_the_message_size(mailbox):
    deliver(mailbox, "Big", attachment=b"x" * 200_000)
    deliver(mailbox, "Small", "short")

    assert subjects(mailbox, "larger:100k") == {"Big"}
    assert subjects(mailbox, "smaller:100k") == {"Small"}
    assert subjects(mailbox, "size:1M") == set()


def test_newer_than_and_older_than_count_back_from_now(mailbox):
    now = datetime.now(UTC)
    deliver(mailbox, "Yesterday", date=format_datetime(now - timedelta(days=1)))
    deliver(mailbox, "Last week", date=format_datetime(now - timedelta(days=7)))
    deliver(mailbox, "Last year", date=format_datetime(now - timedelta(days=400)))

    assert subjects(mailbox, "newer_than:2d") == {"Yesterday"}
    assert subjects(mailbox, "older_than:2d") == {"Last week", "Last year"}
    assert subjects(mailbox, "newer_than:1y older_than:3d") == {"Last week"}
