"""Undo send (the flash after Send offers it; within the delay the text comes back as a draft),
Send later and the Scheduled page."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from delivery.models import OutboundDelivery
from mailbox.models import Draft, Message
from mailbox.services import message_import_raw
from mailbox.services.drafts import draft_create
from mailbox.views_compose import SEND_AT_PAST
from mailbox.views_sending import SCHEDULE_CANCELLED, TOO_LATE, UNDONE
from tests.mail import raw_message


@pytest.fixture
def owner(client, mailbox):
    client.force_login(mailbox.user)
    return mailbox


def _send(client, mailbox, **fields):
    draft = draft_create(mailbox=mailbox)
    data = {"to": "", "cc": "", "bcc": "", "subject": "", "body": "", "body_format": "plain", "version": 1}
    data.update(fields, action="send")
    return client.post(reverse("draft", args=[draft.id]), data, follow=True)


@pytest.mark.django_db
def test_the_sent_flash_offers_undo_as_a_post_form(client, owner):
    response = _send(client, owner, to="carol@example.org", subject="Hi", body="Hello")
    sent = Message.objects.get(mailbox=owner, subject="Hi")
    html = response.content.decode()
    assert f'action="{reverse("message_send_undo", args=[sent.id])}"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert ">Undo</button>" in html


@pytest.mark.django_db
def test_undo_cancels_the_deliveries_and_brings_the_text_back_as_a_draft(client, owner):
    _send(
        client,
        owner,
        to="Carol <carol@example.org>",
        cc="dan@example.org",
        subject="Hi",
        body="Hello **you**",
        body_format="markdown",
    )
    sent = Message.objects.get(mailbox=owner, subject="Hi")
    response = client.post(reverse("message_send_undo", args=[sent.id]), follow=True)
    assert UNDONE in response.content.decode()
    draft = Draft.objects.get(mailbox=owner)
    assert response.redirect_chain[-1][0] == reverse("draft", args=[draft.id])
    assert (draft.to, draft.cc, draft.subject, draft.body_format) == (
        "Carol <carol@example.org>",
        "dan@example.org",
        "Hi",
        Draft.BodyFormat.MARKDOWN,
    )
    assert draft.body == "Hello **you**"
    statuses = set(OutboundDelivery.objects.filter(message_id=sent.id).values_list("status", flat=True))
    assert statuses == {OutboundDelivery.Status.CANCELLED}


@pytest.mark.django_db
def test_undo_after_the_message_left_says_it_is_too_late(client, owner):
    _send(client, owner, to="carol@example.org", subject="Hi", body="Hello")
    sent = Message.objects.get(mailbox=owner, subject="Hi")
    OutboundDelivery.objects.filter(message_id=sent.id).update(status=OutboundDelivery.Status.SENT)
    response = client.post(reverse("message_send_undo", args=[sent.id]), follow=True)
    assert TOO_LATE in response.content.decode()
    assert not Draft.objects.filter(mailbox=owner).exists()


@pytest.mark.django_db
def test_undo_twice_brings_back_one_draft(client, owner):
    _send(client, owner, to="carol@example.org", subject="Hi", body="Hello")
    sent = Message.objects.get(mailbox=owner, subject="Hi")
    client.post(reverse("message_send_undo", args=[sent.id]))
    response = client.post(reverse("message_send_undo", args=[sent.id]), follow=True)
    assert TOO_LATE in response.content.decode()
    assert Draft.objects.filter(mailbox=owner).count() == 1


@pytest.mark.django_db
def test_undo_of_a_reply_keeps_it_a_reply_in_its_thread(client, owner):
    original = message_import_raw(
        mailbox=owner, raw=raw_message("orig@example.org", "Plans", to=owner.address), source_tag="test"
    ).message
    draft = draft_create(mailbox=owner, mode=Draft.Mode.REPLY, source=original)
    data = {
        "to": "carol@example.org",
        "cc": "",
        "bcc": "",
        "subject": "Re: Plans",
        "body": "Yes",
        "body_format": "plain",
        "version": 1,
        "action": "send",
    }
    client.post(reverse("draft", args=[draft.id]), data)
    sent = Message.objects.get(mailbox=owner, subject="Re: Plans")
    client.post(reverse("message_send_undo", args=[sent.id]))
    back = Draft.objects.get(mailbox=owner)
    assert (back.mode, back.reply_to_id, back.thread_id) == (Draft.Mode.REPLY, original.id, original.thread_id)


@pytest.mark.django_db
def test_undo_of_another_users_message_is_404_and_changes_nothing(client, owner, other_mailbox):
    other_client = client.__class__()
    other_client.force_login(other_mailbox.user)
    _send(other_client, other_mailbox, to="carol@example.org", subject="Theirs", body="Hello")
    theirs = Message.objects.get(mailbox=other_mailbox, subject="Theirs")
    assert client.post(reverse("message_send_undo", args=[theirs.id])).status_code == 404
    assert client.get(reverse("message_send_undo", args=[theirs.id])).status_code == 405
    assert not OutboundDelivery.objects.filter(message_id=theirs.id, status=OutboundDelivery.Status.CANCELLED).exists()


# --- Send later and the Scheduled page -------------------------------------------------------


def _later(**delta):
    return (timezone.now() + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.django_db
def test_send_later_schedules_and_lists_the_message_with_cancel(client, owner):
    response = _send(client, owner, to="carol@example.org", subject="Later", body="Hello", send_at=_later(days=1))
    assert response.redirect_chain[-1][0] == reverse("scheduled")
    html = response.content.decode()
    assert "Message scheduled for" in html
    sent = Message.objects.get(mailbox=owner, subject="Later")
    assert f'action="{reverse("message_send_undo", args=[sent.id])}"' in html
    delivery = OutboundDelivery.objects.get(message_id=sent.id)
    assert delivery.status == OutboundDelivery.Status.SCHEDULED
    assert delivery.send_after > timezone.now() + timedelta(hours=23)


@pytest.mark.django_db
def test_cancelling_a_scheduled_send_brings_the_draft_back_and_empties_the_page(client, owner):
    _send(client, owner, to="carol@example.org", subject="Later", body="Hello", send_at=_later(hours=2))
    sent = Message.objects.get(mailbox=owner, subject="Later")
    response = client.post(reverse("message_send_undo", args=[sent.id]), {"scheduled": "1"}, follow=True)
    assert SCHEDULE_CANCELLED in response.content.decode()
    assert Draft.objects.get(mailbox=owner).subject == "Later"
    assert "Nothing scheduled" in client.get(reverse("scheduled")).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["tomorrow-ish", "2026-13-45T25:99"])
def test_a_malformed_send_later_value_is_a_form_message(client, owner, value):
    response = _send(client, owner, to="carol@example.org", subject="Later", body="Hello", send_at=value)
    assert response.status_code == 200
    assert "Enter a date and time" in response.content.decode()
    assert not OutboundDelivery.objects.exists()


@pytest.mark.django_db
def test_a_send_later_time_in_the_past_is_refused_and_the_draft_kept(client, owner):
    response = _send(client, owner, to="carol@example.org", subject="Later", body="Hello", send_at=_later(hours=-1))
    assert SEND_AT_PAST in response.content.decode()
    assert Draft.objects.get(mailbox=owner).body == "Hello"
    assert not OutboundDelivery.objects.exists()


@pytest.mark.django_db
def test_the_scheduled_page_shows_only_the_users_own(client, owner, other_mailbox):
    other_client = client.__class__()
    other_client.force_login(other_mailbox.user)
    _send(other_client, other_mailbox, to="carol@example.org", subject="Theirs", body="x", send_at=_later(days=1))
    _send(client, owner, to="carol@example.org", subject="Mine", body="x", send_at=_later(days=1))
    html = client.get(reverse("scheduled")).content.decode()
    assert "Mine" in html
    assert "Theirs" not in html


# --- Delivery timeline in the conversation ---------------------------------------------------


@pytest.mark.django_db
def test_the_conversation_shows_each_recipients_delivery_and_failures_with_the_reason(client, owner):
    _send(client, owner, to="carol@example.org, dan@example.org", subject="Report", body="Attached")
    sent = Message.objects.get(mailbox=owner, subject="Report")
    OutboundDelivery.objects.filter(message_id=sent.id, recipient="dan@example.org").update(
        status=OutboundDelivery.Status.FAILED, last_error="550 5.1.1 User unknown"
    )
    html = client.get(reverse("thread_detail", args=[sent.thread_id])).content.decode()
    assert f'data-deliveries-url="{reverse("delivery_timeline", args=[sent.id])}"' in html
    assert '<span class="recipient">carol@example.org</span>: <span class="status">queued</span>' in html
    assert "Not delivered to dan@example.org: 550 5.1.1 User unknown" in html
    assert '<span class="step">queued</span>' in html

    fragment = client.get(reverse("delivery_timeline", args=[sent.id])).content.decode()
    assert "Not delivered to dan@example.org: 550 5.1.1 User unknown" in fragment
    assert "carol@example.org" in fragment


@pytest.mark.django_db
def test_received_messages_have_no_delivery_lines(client, owner):
    received = message_import_raw(
        mailbox=owner, raw=raw_message("in@example.org", "Hello", to=owner.address), source_tag="test"
    ).message
    html = client.get(reverse("thread_detail", args=[received.thread_id])).content.decode()
    assert 'class="deliveries"' not in html


@pytest.mark.django_db
def test_the_conversation_query_count_does_not_grow_with_sent_messages(client, owner):
    original = message_import_raw(
        mailbox=owner, raw=raw_message("orig@example.org", "Plans", to=owner.address), source_tag="test"
    ).message

    def reply() -> None:
        draft = draft_create(mailbox=owner, mode=Draft.Mode.REPLY, source=original)
        data = {"to": "carol@example.org", "subject": "Re: Plans", "body": "Yes", "body_format": "plain"}
        client.post(reverse("draft", args=[draft.id]), {**data, "cc": "", "bcc": "", "version": 1, "action": "send"})

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("thread_detail", args=[original.thread_id])).status_code == 200
        return len(captured)

    reply()
    queries()  # the first visit also marks the original read
    one = queries()
    for _ in range(3):
        reply()
    assert queries() == one
    assert Message.objects.filter(thread_id=original.thread_id).count() == 5
