from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from django.urls import reverse

from mailbox.models import Label
from mailbox.selectors import PAGE_SIZE, Cursor
from mailbox.services import message_import_raw

START = datetime(2026, 1, 1, tzinfo=UTC)


def _deliver(mailbox, n: int, *, subject: str = "Thread") -> None:
    msg = EmailMessage()
    msg["From"] = f"Sender {n} <sender{n}@example.org>"
    msg["To"] = mailbox.address
    msg["Subject"] = f"{subject} {n}"
    msg["Message-ID"] = f"<{subject.replace(' ', '')}-{n}@example.org>"
    msg["Date"] = (START + timedelta(minutes=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    msg.set_content(f"body {n}")
    message_import_raw(mailbox=mailbox, raw=bytes(msg), source_tag="test")


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


@pytest.mark.django_db
def test_keyset_pages_cover_every_thread_once(client, mailbox):
    for n in range(PAGE_SIZE + 5):
        _deliver(mailbox, n)
    client.force_login(mailbox.user)

    first = client.get(reverse("inbox"))
    older = first.context["page"].older
    second = client.get(reverse("inbox"), {"older": older.encode()})

    first_ids = [t.id for t in first.context["page"].threads]
    second_ids = [t.id for t in second.context["page"].threads]
    assert len(first_ids) == PAGE_SIZE
    assert len(second_ids) == 5
    assert not set(first_ids) & set(second_ids)
    assert second.context["page"].older is None


@pytest.mark.django_db
def test_thread_list_queries_do_not_grow_with_the_page(client, mailbox, django_assert_max_num_queries):
    for n in range(PAGE_SIZE):
        _deliver(mailbox, n)
    client.force_login(mailbox.user)
    with django_assert_max_num_queries(8):
        assert client.get(reverse("inbox")).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["garbage", "2026-01-01_x", "_5", "2026-01-01T00:00:00_3"])
def test_malformed_cursor_shows_the_first_page(client, mailbox, cursor):
    _deliver(mailbox, 1)
    client.force_login(mailbox.user)
    response = client.get(reverse("inbox"), {"older": cursor})
    assert response.status_code == 200
    assert response.context["is_first_page"]


def test_cursor_round_trips():
    cursor = Cursor(START, 42)
    assert Cursor.decode(cursor.encode()) == cursor


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
