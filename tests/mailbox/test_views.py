"""The thread lists: what a row shows, keyset pages both ways, the sidebar, constant queries."""

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailbox.models import Alias, Label, Message
from mailbox.selectors import PAGE_SIZE, Cursor
from mailbox.services import message_import_raw, messages_label_add, messages_star
from mailbox.services.preferences import user_label_create
from tests.mail import raw_message

START = datetime(2026, 1, 1, tzinfo=UTC)


def _deliver(mailbox, n: int, *, subject: str = "Thread", roles=(Label.Role.INBOX,), attachment=b""):
    msg = EmailMessage()
    msg["From"] = f"Sender {n} <sender{n}@example.org>"
    msg["To"] = mailbox.address
    msg["Subject"] = f"{subject} {n}"
    msg["Message-ID"] = f"<{subject.replace(' ', '')}-{n}@example.org>"
    msg["Date"] = (START + timedelta(minutes=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    msg.set_content(f"body {n}")
    if attachment:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="a.pdf")
    return message_import_raw(mailbox=mailbox, raw=bytes(msg), source_tag="test", label_roles=roles).message


def _ids(response) -> list[int]:
    return [t.id for t in response.context["page"].threads]


@pytest.mark.django_db
def test_inbox_lists_the_owners_threads_newest_first(client, mailbox, other_mailbox):
    for n in range(3):
        _deliver(mailbox, n)
    _deliver(other_mailbox, 99, subject="Not yours")
    client.force_login(mailbox.user)

    response = client.get(reverse("inbox"))

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("Thread 2") < html.index("Thread 1") < html.index("Thread 0")
    assert "Not yours" not in html
    assert "<title>Inbox (3)" in html
    assert 'href="/t/' in html


@pytest.mark.django_db
def test_a_row_shows_senders_me_count_star_chip_attachment_and_unread(client, mailbox):
    first = message_import_raw(
        mailbox=mailbox, raw=raw_message("r1@x", "Lunch", sender="Carol Jones <carol@example.org>"), source_tag="t"
    ).message
    reply = raw_message(
        "r2@x", "Re: Lunch", in_reply_to="r1@x", sender="Alice <alice@example.test>", to="carol@example.org"
    )
    message_import_raw(mailbox=mailbox, raw=reply, source_tag="t", is_read=True)
    files = message_import_raw(
        mailbox=mailbox, raw=raw_message("r3@x", "Files", attachment=b"%PDF-1.4"), source_tag="t", is_read=True
    ).message
    work = user_label_create(mailbox=mailbox, name="Work", colour="#188038")
    messages_label_add(mailbox=mailbox, message_ids=[first.id], label=work)
    messages_star(mailbox=mailbox, message_ids=[first.id])
    client.force_login(mailbox.user)

    html = client.get(reverse("inbox")).content.decode()

    lunch = _row(html, first.thread_id)
    assert "Carol, me" in lunch
    assert 'class="count"' in lunch
    assert ">2<" in lunch
    assert "label-chip chip-188038" in lunch
    assert "Work" in lunch
    assert 'class="star on"' in lunch
    assert lunch.startswith('<li class="thread unread"')
    assert 'aria-label="Has attachments"' in _row(html, files.thread_id)
    assert _row(html, files.thread_id).startswith('<li class="thread"')
    assert 'aria-label="Has attachments"' not in lunch


@pytest.mark.django_db
def test_a_message_sent_from_an_alias_shows_me(client, mailbox):
    Alias.objects.create(mailbox=mailbox, domain=mailbox.domain, address="sales@example.test")
    first = message_import_raw(
        mailbox=mailbox, raw=raw_message("a1@x", "Quote", sender="Carol Jones <carol@example.org>"), source_tag="t"
    ).message
    reply = raw_message(
        "a2@x", "Re: Quote", in_reply_to="a1@x", sender="Sales <Sales@Example.TEST>", to="carol@example.org"
    )
    message_import_raw(mailbox=mailbox, raw=reply, source_tag="t", is_read=True)
    client.force_login(mailbox.user)

    with CaptureQueriesContext(connection) as queries:
        html = client.get(reverse("inbox")).content.decode()

    assert "Carol, me" in _row(html, first.thread_id)
    # The aliases come with the session's user and mailbox: one statement reads all three.
    assert sum("mailbox_alias" in q["sql"] for q in queries.captured_queries) == 1


@pytest.mark.django_db
def test_a_five_sender_thread_names_the_first_and_the_latest_senders(client, mailbox):
    people = ["Carol", "Dave", "Erin", "Frank", "Grace", "Dave"]  # Dave writes again, last
    parent = ""
    for n, person in enumerate(people):
        raw = raw_message(
            f"five{n}@x",
            "Plans" if n == 0 else "Re: Plans",
            in_reply_to=parent,
            sender=f"{person} Smith <{person.lower()}@example.org>",
            date=f"Mon, 02 Nov 2026 10:0{n}:00 +0000",
        )
        message = message_import_raw(mailbox=mailbox, raw=raw, source_tag="t").message
        parent = f"five{n}@x"
    client.force_login(mailbox.user)

    row = _row(client.get(reverse("inbox")).content.decode(), message.thread_id)
    live = client.get(reverse("thread_row", args=[message.thread_id]), {"label": "all"}).content.decode()

    assert "Carol … Grace, Dave" in row
    assert "Carol … Grace, Dave" in live


def _row(html: str, thread_id: int) -> str:
    start = html.rindex("<li", 0, html.index(f'id="thread-{thread_id}"'))
    return html[start : html.index("</li>", start)]


@pytest.mark.django_db
def test_keyset_pages_cover_every_thread_once_both_ways(client, mailbox):
    for n in range(PAGE_SIZE * 2 + 5):
        _deliver(mailbox, n)
    client.force_login(mailbox.user)

    first = client.get(reverse("inbox"))
    second = client.get(reverse("inbox"), {"older": first.context["page"].older.encode()})
    third = client.get(reverse("inbox"), {"older": second.context["page"].older.encode()})
    back = client.get(reverse("inbox"), {"newer": second.context["page"].newer.encode()})

    assert [len(_ids(r)) for r in (first, second, third)] == [PAGE_SIZE, PAGE_SIZE, 5]
    assert len(set(_ids(first)) | set(_ids(second)) | set(_ids(third))) == PAGE_SIZE * 2 + 5
    assert third.context["page"].older is None
    assert first.context["page"].newer is None
    assert _ids(back) == _ids(first)
    assert back.context["page"].newer is None
    assert 'rel="prev"' in second.content.decode()
    assert 'rel="next"' in second.content.decode()


@pytest.mark.django_db
def test_the_list_query_uses_no_offset(client, mailbox):
    for n in range(3):
        _deliver(mailbox, n)
    client.force_login(mailbox.user)
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("inbox"), {"older": Cursor(START + timedelta(days=1), 10**9).encode()})
    assert not any("OFFSET" in q["sql"] for q in queries.captured_queries)


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("list_name", ["inbox", "starred", "all_mail", "label"])
def test_queries_per_page_are_the_same_for_5_and_50_threads(client, mailbox, list_name):
    work = user_label_create(mailbox=mailbox, name="Work")
    client.force_login(mailbox.user)
    url = reverse("label", args=[work.id]) if list_name == "label" else reverse(list_name)

    def fill(upto: int, start: int) -> None:
        for n in range(start, upto):
            message = _deliver(mailbox, n, attachment=b"x" if n % 2 else b"")
            messages_star(mailbox=mailbox, message_ids=[message.id])
            messages_label_add(mailbox=mailbox, message_ids=[message.id], label=work)

    fill(5, 0)
    with_five = _count_queries(client, url)
    fill(PAGE_SIZE, 5)
    with_fifty = _count_queries(client, url)
    assert with_five == with_fifty
    assert with_fifty <= 10


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["garbage", "2026-01-01_x", "_5", "2026-01-01T00:00:00_3"])
def test_malformed_cursor_shows_the_first_page(client, mailbox, cursor):
    _deliver(mailbox, 1)
    client.force_login(mailbox.user)
    response = client.get(reverse("inbox"), {"older": cursor, "newer": cursor})
    assert response.status_code == 200
    assert response.context["is_first_page"]


def test_cursor_round_trips():
    cursor = Cursor(START, 42)
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.django_db
def test_starred_and_all_mail(client, mailbox):
    starred = _deliver(mailbox, 1, subject="Shiny")
    _deliver(mailbox, 2, subject="Plain")
    _deliver(mailbox, 3, subject="Junk", roles=(Label.Role.SPAM,))
    _deliver(mailbox, 4, subject="Archived", roles=())
    messages_star(mailbox=mailbox, message_ids=[starred.id])
    client.force_login(mailbox.user)

    starred_html = client.get(reverse("starred")).content.decode()
    all_html = client.get(reverse("all_mail")).content.decode()

    assert "Shiny 1" in starred_html
    assert "Plain 2" not in starred_html
    assert all(s in all_html for s in ("Shiny 1", "Plain 2", "Archived 4"))
    assert "Junk 3" not in all_html


@pytest.mark.django_db
def test_sidebar_has_system_lists_user_labels_and_unread_counts(client, mailbox):
    _deliver(mailbox, 1)
    _deliver(mailbox, 2, roles=(Label.Role.SPAM,))
    user_label_create(mailbox=mailbox, name="Receipts", colour="#1a73e8")
    client.force_login(mailbox.user)

    response = client.get(reverse("inbox"))

    names = [entry["name"] for entry in response.context["sidebar"]]
    assert names == ["Inbox", "Starred", "Sent", "Drafts", "All mail", "Spam", "Trash", "Receipts"]
    unread = {entry["name"]: entry["unread"] for entry in response.context["sidebar"]}
    assert unread["Inbox"] == 1
    assert unread["Spam"] == 1
    assert unread["Trash"] == 0
    assert 'data-unread-for="' in response.content.decode()


@pytest.mark.django_db
def test_another_users_label_is_not_found(client, mailbox, other_mailbox):
    foreign = Label.objects.get(mailbox=other_mailbox, role=Label.Role.SENT)
    client.force_login(mailbox.user)
    assert client.get(reverse("label", args=[foreign.id])).status_code == 404


@pytest.mark.django_db
def test_own_label_lists_its_threads(client, mailbox):
    sent = Label.objects.get(mailbox=mailbox, role=Label.Role.SENT)
    client.force_login(mailbox.user)
    response = client.get(reverse("label", args=[sent.id]))
    assert response.status_code == 200
    assert "No conversations here." in response.content.decode()


@pytest.mark.django_db
def test_user_without_mailbox_gets_an_explanation(client, django_user_model):
    user = django_user_model.objects.create_user(username="staff", password="x")
    client.force_login(user)
    response = client.get(reverse("inbox"))
    assert response.status_code == 404
    assert "createmailbox" in response.content.decode()


@pytest.mark.django_db
def test_login_with_the_address_reaches_the_inbox(client, mailbox):
    response = client.post(
        reverse("login"), {"username": "alice@example.test", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    assert response.url == reverse("inbox")
    assert client.get(reverse("inbox")).status_code == 200


@pytest.mark.django_db
def test_bad_login_shows_a_message(client, mailbox):
    response = client.post(reverse("login"), {"username": "alice@example.test", "password": "wrong"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


@pytest.mark.django_db
def test_pages_carry_a_strict_csp_and_refuse_framing(client, mailbox):
    client.force_login(mailbox.user)
    response = client.get(reverse("inbox"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    html = response.content.decode()
    assert "<script>" not in html
    assert " onclick=" not in html
    assert " style=" not in html


@pytest.mark.django_db
def test_the_page_embeds_the_live_cursor_and_the_list_key(client, mailbox):
    _deliver(mailbox, 1)
    client.force_login(mailbox.user)

    html = client.get(reverse("inbox")).content.decode()
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    assert re.search(r'data-live-cursor="\d+:\d+:[\d,]*"', html)  # a snapshot (selectors.live_cursor)
    assert f'data-list="{inbox.id}"' in html
    assert Message.objects.filter(mailbox=mailbox).count() == 1
