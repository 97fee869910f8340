"""Sending: the checks, the MIME we build, the Sent copy, local recipients, undo and send later.

The email backend is Django's locmem backend (pytest-django's default): every hand-off lands in
``mail.outbox`` as the message object the backend was given.
"""

from datetime import timedelta
from email import message_from_bytes
from email.policy import default

import pytest
from django.core import mail
from django.utils import timezone

from delivery.models import DeliveryEvent, InboundReceipt, OutboundDelivery, Suppression
from delivery.outbound import outbound_release_due, outbound_send
from delivery.selectors import blob_read
from delivery.services import blob_store, inbound_receipt_create
from mailbox.models import Alias, Label, Message, ThreadLabel
from mailbox.services import message_import_raw
from mailbox.services.flags import messages_label_remove
from mailbox.services.sending import (
    OutgoingMail,
    SendRefused,
    delivery_timeline_for_message,
    message_send,
    message_send_cancel,
    messages_scheduled,
)
from mailsite.models import DomainEvent
from tests.mail import raw_message


@pytest.fixture(autouse=True)
def _no_undo_delay(settings):
    settings.MAILSITE_UNDO_SEND_SECONDS = 0


def send(mailbox, committed, **fields):
    fields.setdefault("from_address", mailbox.address)
    fields.setdefault("to", ["carol@example.org"])
    fields.setdefault("subject", "Lunch")
    fields.setdefault("text", "Noon at the usual place?")
    send_at = fields.pop("send_at", None)
    with committed(execute=True):
        return message_send(mailbox=mailbox, mail=OutgoingMail(**fields), send_at=send_at)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def sent_bytes(message: Message) -> bytes:
    return blob_read(blob=OutboundDelivery.objects.filter(message_id=message.id).first().blob)


def labels_of(message: Message) -> set[str]:
    return set(Label.objects.filter(message_labels__message=message).values_list("role", flat=True))


def test_a_sent_message_is_built_filed_under_sent_and_handed_off(mailbox, committed):
    message = send(mailbox, committed, html="<p>Noon at the usual place?</p>")

    assert labels_of(message) == {Label.Role.SENT}
    assert message.is_read
    assert message.source_tag == "sent"
    raw = message_from_bytes(sent_bytes(message), policy=default)
    assert raw["Message-ID"].endswith("@example.test>")
    assert raw["Message-ID"] == f"<{message.message_id}>"
    assert str(raw["From"]) == "Alice <alice@example.test>"
    assert raw["Date"]
    assert raw["To"] == "carol@example.org"
    assert raw.get_body(("plain",)).get_content().strip() == "Noon at the usual place?"
    assert raw.get_body(("html",)).get_content().strip() == "<p>Noon at the usual place?</p>"
    delivery = OutboundDelivery.objects.get(message_id=message.id)
    assert (delivery.status, delivery.recipient, delivery.mailbox_id) == ("sent", "carol@example.org", mailbox.id)
    assert delivery.envelope_sender == f"bounces+{delivery.id}@example.test"
    assert [m.to for m in mail.outbox] == [["carol@example.org"]]
    assert DomainEvent.objects.filter(event_type="message.sent", subject_id=message.id).count() == 1


def test_the_undo_delay_holds_the_delivery_until_the_release(mailbox, committed, settings):
    settings.MAILSITE_UNDO_SEND_SECONDS = 10
    message = send(mailbox, committed)

    delivery = OutboundDelivery.objects.get(message_id=message.id)
    assert delivery.status == "queued"
    assert mail.outbox == []
    assert delivery.send_after >= timezone.now() + timedelta(seconds=8)
    assert outbound_release_due() == []
    assert outbound_release_due(now=delivery.send_after + timedelta(minutes=2)) == [delivery.id]


def test_undo_within_the_delay_cancels_every_recipient(mailbox, committed, settings):
    settings.MAILSITE_UNDO_SEND_SECONDS = 10
    message = send(mailbox, committed, to=["carol@example.org", "dan@example.org"])

    assert message_send_cancel(mailbox=mailbox, message_id=message.id) == 2
    ids = list(OutboundDelivery.objects.values_list("id", flat=True))
    OutboundDelivery.objects.update(send_after=timezone.now())
    assert outbound_send(delivery_ids=ids).sent == 0
    assert set(OutboundDelivery.objects.values_list("status", flat=True)) == {"cancelled"}
    assert mail.outbox == []


def test_undo_after_the_hand_off_is_too_late(mailbox, committed, other_mailbox):
    message = send(mailbox, committed)

    assert message_send_cancel(mailbox=mailbox, message_id=message.id) == 0
    with pytest.raises(SendRefused, match="No such message"):
        message_send_cancel(mailbox=other_mailbox, message_id=message.id)


def test_send_later_waits_in_the_scheduled_view_until_its_time(mailbox, committed):
    at = timezone.now() + timedelta(hours=3)
    message = send(mailbox, committed, send_at=at)

    assert [(m.id, m.send_after) for m in messages_scheduled(mailbox=mailbox)] == [(message.id, at)]
    delivery = OutboundDelivery.objects.get(message_id=message.id)
    assert delivery.status == "scheduled"
    assert mail.outbox == []
    assert outbound_release_due() == []
    due = outbound_release_due(now=at + timedelta(seconds=1))
    assert due == [delivery.id]
    OutboundDelivery.objects.update(send_after=timezone.now())
    assert outbound_send(delivery_ids=due).sent == 1
    assert list(messages_scheduled(mailbox=mailbox)) == []


def test_a_scheduled_send_can_be_cancelled(mailbox, committed):
    message = send(mailbox, committed, send_at=timezone.now() + timedelta(days=1))

    assert message_send_cancel(mailbox=mailbox, message_id=message.id) == 1
    assert list(messages_scheduled(mailbox=mailbox)) == []


def test_a_reply_threads_with_the_message_it_answers(mailbox, committed):
    inbound = message_import_raw(
        mailbox=mailbox, raw=raw_message("q1@example.org", "Question", sender="carol@example.org"), source_tag="smtp"
    ).message

    reply = send(mailbox, committed, subject="Re: Question", in_reply_to_message_id=inbound.id)

    raw = message_from_bytes(sent_bytes(reply), policy=default)
    assert raw["In-Reply-To"] == "<q1@example.org>"
    assert raw["References"] == "<q1@example.org>"
    assert reply.thread_id == inbound.thread_id


def test_a_forward_carries_the_original_as_an_attachment(mailbox, committed):
    original_raw = raw_message("orig@example.org", "Minutes", sender="carol@example.org")
    original = message_import_raw(mailbox=mailbox, raw=original_raw, source_tag="smtp").message

    forward = send(mailbox, committed, subject="Fwd: Minutes", forward_of_message_id=original.id)

    raw = message_from_bytes(sent_bytes(forward), policy=default)
    attached = next(raw.iter_attachments())
    assert attached.get_content_type() == "message/rfc822"
    assert attached.get_content()["Message-ID"] == "<orig@example.org>"
    assert raw["References"] == "<orig@example.org>"


def test_an_inline_forward_quotes_the_original(mailbox, committed):
    original_raw = raw_message("orig2@example.org", "Minutes", sender="carol@example.org")
    original = message_import_raw(mailbox=mailbox, raw=original_raw, source_tag="smtp").message

    forward = send(mailbox, committed, forward_of_message_id=original.id, forward_as_attachment=False, text="FYI")

    body = message_from_bytes(sent_bytes(forward), policy=default).get_body(("plain",)).get_content()
    assert "---------- Forwarded message ----------" in body
    assert "Subject: Minutes" in body
    assert "Body of Minutes" in body


def test_attachments_come_from_stored_blobs(mailbox, committed):
    blob = blob_store(data=b"%PDF-1.4 minutes")

    message = send(mailbox, committed, attachments=[("minutes.pdf", "application/pdf", blob.sha256)])

    part = next(message_from_bytes(sent_bytes(message), policy=default).iter_attachments())
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "minutes.pdf",
        "application/pdf",
        b"%PDF-1.4 minutes",
    )
    assert message.has_attachments


def test_bcc_recipients_get_a_copy_without_the_bcc_line(mailbox, committed):
    message = send(mailbox, committed, bcc=["secret@example.org"])

    assert set(OutboundDelivery.objects.values_list("recipient", flat=True)) == {
        "carol@example.org",
        "secret@example.org",
    }
    assert b"secret@example.org" not in sent_bytes(message)
    assert b"Bcc: secret@example.org" in blob_read(blob=message.blob)


def test_a_local_recipient_gets_it_through_the_ingest_path_threaded(mailbox, other_mailbox, committed):
    sent = send(mailbox, committed, to=["bob@example.test"], subject="Hi Bob")

    received = Message.objects.get(mailbox=other_mailbox)
    assert labels_of(received) == {Label.Role.INBOX}
    assert received.message_id == sent.message_id
    assert received.receipt.source == "local"
    assert mail.outbox == []

    reply = send(
        other_mailbox, committed, to=["alice@example.test"], subject="Re: Hi Bob", in_reply_to_message_id=received.id
    )

    alice_copy = Message.objects.get(mailbox=mailbox, message_id=reply.message_id)
    assert alice_copy.thread_id == sent.thread_id
    assert labels_of(alice_copy) == {Label.Role.INBOX}


def _in_inbox_list(message: Message) -> bool:
    return ThreadLabel.objects.filter(
        mailbox=message.mailbox, thread_id=message.thread_id, label__role=Label.Role.INBOX
    ).exists()


def test_a_message_to_oneself_is_one_message_in_sent_and_the_inbox(mailbox, committed):
    sent = send(mailbox, committed, to=["Alice <alice@example.test>", "carol@example.org"])

    [only] = Message.objects.filter(mailbox=mailbox)
    assert only.id == sent.id
    assert labels_of(only) == {Label.Role.SENT, Label.Role.INBOX}
    assert _in_inbox_list(only)
    assert set(OutboundDelivery.objects.values_list("recipient", "status")) == {
        ("alice@example.test", "sent"),
        ("carol@example.org", "sent"),
    }


def test_to_an_alias_of_ones_own_through_a_batch_of_receipts_too(mailbox, committed, settings):
    from mailbox.services.receiving import receipts_process_batch

    Alias.objects.create(mailbox=mailbox, domain=mailbox.domain, address="me@example.test")
    settings.MAILSITE_UNDO_SEND_SECONDS = 10
    sent = send(mailbox, committed, to=["me@example.test"])
    [delivery] = OutboundDelivery.objects.all()
    OutboundDelivery.objects.update(send_after=timezone.now())
    with committed(execute=False):  # the parse task is not run: the batch path takes the receipt
        outbound_send(delivery_ids=[delivery.id])
    [receipt] = InboundReceipt.objects.filter(source="local")

    assert receipts_process_batch(receipt_ids=[receipt.id]).finished == [receipt.id]

    assert list(Message.objects.filter(mailbox=mailbox)) == [sent]
    assert labels_of(sent) == {Label.Role.SENT, Label.Role.INBOX}


def test_a_message_to_oneself_undone_never_reaches_the_inbox(mailbox, committed, settings):
    settings.MAILSITE_UNDO_SEND_SECONDS = 10
    sent = send(mailbox, committed, to=["alice@example.test"])

    assert labels_of(sent) == {Label.Role.SENT}  # not before it leaves
    assert message_send_cancel(mailbox=mailbox, message_id=sent.id) == 1
    OutboundDelivery.objects.update(send_after=timezone.now() - timedelta(seconds=1))
    outbound_send(delivery_ids=list(OutboundDelivery.objects.values_list("id", flat=True)))

    assert labels_of(sent) == {Label.Role.SENT}
    assert not _in_inbox_list(sent)


def test_the_same_inbound_bytes_again_do_not_bring_an_archived_message_back(mailbox):
    from mailbox.services.receiving import receipt_process

    raw = raw_message("archived@example.org", "Archived", to="Alice <alice@example.test>")
    receipts = [
        inbound_receipt_create(source="smtp", raw=raw, event_id=f"queue-{n}", envelope_recipients=[mailbox.address])
        for n in (1, 2)
    ]
    receipt_process(receipt_id=receipts[0].receipt.id)
    [first] = Message.objects.filter(mailbox=mailbox)
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    messages_label_remove(mailbox=mailbox, message_ids=[first.id], label=inbox)

    receipt_process(receipt_id=receipts[1].receipt.id)

    assert list(Message.objects.filter(mailbox=mailbox)) == [first]
    assert labels_of(first) == set()


def test_an_alias_is_a_from_address_the_mailbox_owns(mailbox, committed):
    Alias.objects.create(mailbox=mailbox, domain=mailbox.domain, address="sales@example.test")

    message = send(mailbox, committed, from_address="sales@example.test")

    assert message.from_address == "sales@example.test"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"from_address": "ceo@example.test"}, "only send from your own addresses"),
        ({"from_address": "alice@elsewhere.org"}, "only send from your own addresses"),
        ({"to": []}, "at least one recipient"),
        ({"to": ["not an address"]}, "Not a valid address: not an address"),
        ({"to": ["nobody@example.test"]}, "No mailbox here for nobody@example.test"),
    ],
)
def test_bad_sends_are_refused_with_a_clear_message(mailbox, committed, fields, error):
    with pytest.raises(SendRefused, match=error):
        send(mailbox, committed, **fields)

    assert not OutboundDelivery.objects.exists()
    assert not Message.objects.exists()


def test_a_suppressed_address_is_refused_up_front(mailbox, committed):
    Suppression.objects.create(address="carol@example.org", reason="hard_bounce", source="esp:mailgun")

    with pytest.raises(SendRefused, match=r"carol@example\.org is suppressed"):
        send(mailbox, committed, to=["Carol@Example.org"])


def test_the_rate_limit_per_minute_and_per_day(mailbox, committed, settings):
    settings.MAILSITE_SEND_LIMIT_PER_MINUTE = 3
    send(mailbox, committed, to=["a@example.org", "b@example.org"])

    with pytest.raises(SendRefused, match="at most 3 recipients per minute"):
        send(mailbox, committed, to=["c@example.org", "d@example.org"])

    settings.MAILSITE_SEND_LIMIT_PER_MINUTE = 100
    settings.MAILSITE_SEND_LIMIT_PER_DAY = 3
    with pytest.raises(SendRefused, match="at most 3 recipients per day"):
        send(mailbox, committed, to=["c@example.org", "d@example.org"])


def test_the_timeline_shows_each_recipient_and_only_to_its_owner(mailbox, other_mailbox, committed):
    message = send(mailbox, committed, to=["carol@example.org", "dan@example.org"])

    timeline = delivery_timeline_for_message(mailbox=mailbox, message_id=message.id)

    assert [(t.recipient, t.status, [s.event_type for s in t.steps]) for t in timeline] == [
        ("carol@example.org", "sent", [DeliveryEvent.Type.QUEUED, DeliveryEvent.Type.SENT]),
        ("dan@example.org", "sent", [DeliveryEvent.Type.QUEUED, DeliveryEvent.Type.SENT]),
    ]
    assert delivery_timeline_for_message(mailbox=other_mailbox, message_id=message.id) == []
