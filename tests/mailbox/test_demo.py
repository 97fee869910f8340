import html
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from mailbox.demo import Person, demo_messages
from mailbox.models import Label, Mailbox, Message, ThreadLabel
from mailbox.selectors import thread_list_for_label

DEMO_ADDRESS = f"demo@{settings.MAILSITE_DEFAULT_DOMAIN}"
NOW = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
USER = Person("Demo User", "demo@example.test")


def _seed(messages: int = 60) -> str:
    out = StringIO()
    call_command("seed_demo", messages=messages, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded(db) -> str:
    return _seed()


@pytest.fixture(scope="module")
def corpus():
    return demo_messages(user=USER, count=300, seed=1, now=NOW)


# --- The generator alone: no database ---------------------------------------------------


def test_same_seed_and_now_give_the_same_bytes_and_another_seed_does_not():
    first = demo_messages(user=USER, count=80, seed=7, now=NOW)

    assert [m.raw for m in demo_messages(user=USER, count=80, seed=7, now=NOW)] == [m.raw for m in first]
    assert [m.raw for m in demo_messages(user=USER, count=80, seed=8, now=NOW)] != [m.raw for m in first]
    assert len(first) == 80


def test_only_the_dates_follow_now():
    later = NOW + timedelta(days=3)
    a = demo_messages(user=USER, count=40, seed=1, now=NOW)
    b = demo_messages(user=USER, count=40, seed=1, now=later)

    assert [m.date + timedelta(days=3) for m in a] == [m.date for m in b]
    assert [(m.by_user, _parse(m.raw)["Subject"]) for m in a] == [(m.by_user, _parse(m.raw)["Subject"]) for m in b]


def test_dates_span_ninety_days_up_to_today_and_fresh_mail_is_mostly_unread(corpus):
    messages = corpus

    assert all(NOW - timedelta(days=90) <= m.date <= NOW and m.date.tzinfo is not None for m in messages)
    assert NOW - messages[0].date > timedelta(days=60)
    assert sum(m.date.date() == NOW.date() for m in messages) >= 3
    old = [m for m in messages if NOW - m.date > timedelta(days=30)]
    fresh = [m for m in messages if NOW - m.date < timedelta(days=1) and not m.by_user]
    assert sum(m.is_read for m in old) / len(old) > 0.9
    assert sum(not m.is_read for m in fresh) / len(fresh) > 0.5
    assert all(m.is_read for m in messages if m.by_user)


def test_messages_are_wire_format_with_the_headers_threading_needs(corpus):
    messages = corpus
    parsed = [_parse(m.raw) for m in messages]

    assert all(b"\r\n" in m.raw and b"\n" not in m.raw.replace(b"\r\n", b"") for m in messages)
    assert all(p["Message-ID"] and p["Date"] and p["From"] and p["To"] for p in parsed)
    assert len({p["Message-ID"] for p in parsed}) == len(parsed)
    replies = [p for p in parsed if p["In-Reply-To"]]
    assert replies
    assert all(p["Subject"].startswith("Re: ") and p["In-Reply-To"] in p["References"] for p in replies)
    assert len({str(p["From"]) for p in parsed}) >= 25


def test_the_mix_has_a_mailing_list_newsletters_html_and_attachments(corpus):
    parsed = [_parse(m.raw) for m in corpus]

    team_list = [p for p in parsed if "[team-list]" in p["Subject"]]
    assert team_list
    assert all(p["List-Id"] == "Team discussion <team-list.example.test>" for p in team_list)
    assert any(p["List-Unsubscribe"] and "[team-list]" not in p["Subject"] for p in parsed)
    assert any(p.get_body(("html",)) is not None for p in parsed)
    kinds = {part.get_content_type() for p in parsed for part in p.iter_attachments()}
    assert {"text/csv", "image/png"} <= kinds


def _parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


# --- The command, through the real delivery path ----------------------------------------


@pytest.mark.django_db
def test_seed_creates_the_mailbox_and_the_printed_login_works(seeded, client):
    address, password = re.search(r"Log in as (\S+) with password (\S+)", seeded).groups()

    mailbox = Mailbox.objects.get(address=DEMO_ADDRESS)
    assert address == DEMO_ADDRESS
    assert mailbox.display_name == "Demo User"
    assert client.login(username=address, password=password)
    assert Message.objects.filter(mailbox=mailbox, source_tag="demo").count() == 60


@pytest.mark.django_db
def test_replies_share_their_parents_thread(seeded):
    messages = Message.objects.filter(mailbox__address=DEMO_ADDRESS)
    by_id = {m.message_id: m for m in messages}
    replies = [m for m in messages if m.in_reply_to]

    assert replies
    assert all(by_id[m.in_reply_to].thread_id == m.thread_id for m in replies)
    assert all(m.thread_reason == Message.ThreadReason.REFERENCE for m in replies)
    sizes = [len({m.id for m in messages if m.thread_id == t}) for t in {m.thread_id for m in messages}]
    assert max(sizes) >= 3
    assert 1 in sizes


@pytest.mark.django_db
def test_sent_holds_the_users_own_replies_read(seeded):
    mailbox = Mailbox.objects.get(address=DEMO_ADDRESS)
    own = Message.objects.filter(mailbox=mailbox, from_address=DEMO_ADDRESS)
    sent = Label.objects.get(mailbox=mailbox, role=Label.Role.SENT)

    assert own.filter(in_reply_to__gt="").exists()
    assert set(own.values_list("message_labels__label", flat=True)) == {sent.id}
    assert all(m.is_read for m in own)
    assert ThreadLabel.objects.filter(label=sent).exists()


@pytest.mark.django_db
def test_a_second_run_adds_nothing(seeded):
    again = _seed()

    assert "already holds 60 messages; nothing added" in again
    assert Message.objects.filter(mailbox__address=DEMO_ADDRESS).count() == 60
    assert Mailbox.objects.filter(address=DEMO_ADDRESS).count() == 1


@pytest.mark.django_db
def test_the_inbox_shows_the_demo_threads(seeded, client):
    mailbox = Mailbox.objects.get(address=DEMO_ADDRESS)
    client.force_login(mailbox.user)
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    subjects = [t.subject for t in thread_list_for_label(mailbox=mailbox, label=inbox).threads]

    response = client.get(reverse("inbox"))

    assert response.status_code == 200
    assert subjects
    # As text: each engine spells an escaped quote its own way (&#x27;, &#39;); escaping is
    # checked by the row markup tests.
    page_text = html.unescape(response.content.decode())
    assert all(subject in page_text for subject in subjects)
