"""Uniqueness and immutability are enforced by PostgreSQL itself, not only by code."""

import pytest
from django.db import IntegrityError, InternalError, transaction
from django.utils import timezone

from delivery.models import Blob, InboundReceipt, Suppression
from delivery.services import blob_store
from mailbox.models import Label, Message
from mailbox.services import message_import_raw
from mailsite.events import domain_event_record
from mailsite.models import DomainEvent
from threads.models import Thread, ThreadMessageId

RAW = b"From: a@example.org\r\nTo: alice@example.test\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n"


def _fails_in_database(insert) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        insert()


@pytest.mark.django_db
def test_one_blob_per_sha256():
    blob = blob_store(data=b"bytes")
    _fails_in_database(lambda: Blob.objects.create(sha256=blob.sha256, size=5, storage_key="elsewhere"))


@pytest.mark.django_db
def test_blob_sha256_must_be_a_hex_digest():
    _fails_in_database(lambda: Blob.objects.create(sha256="not-a-hash", size=1, storage_key="k"))


@pytest.mark.django_db
def test_blob_content_columns_are_immutable():
    blob = blob_store(data=b"bytes")
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        Blob.objects.filter(pk=blob.pk).update(size=6)


@pytest.mark.django_db
def test_one_message_per_mailbox_and_blob(mailbox):
    message = message_import_raw(mailbox=mailbox, raw=RAW, source_tag="test").message
    thread = Thread.objects.create(mailbox_id=mailbox.id)
    _fails_in_database(
        lambda: Message.objects.create(
            mailbox=mailbox,
            thread=thread,
            blob=message.blob,
            message_id="other@x",
            date=timezone.now(),
            received_at=timezone.now(),
        )
    )


@pytest.mark.django_db
def test_the_same_blob_may_sit_in_two_mailboxes(mailbox, other_mailbox):
    first = message_import_raw(mailbox=mailbox, raw=RAW, source_tag="test").message
    second = message_import_raw(mailbox=other_mailbox, raw=RAW, source_tag="test").message
    assert first.blob_id == second.blob_id
    assert first.pk != second.pk


@pytest.mark.django_db
def test_only_drafts_may_lack_a_blob(mailbox):
    thread = Thread.objects.create(mailbox_id=mailbox.id)
    _fails_in_database(
        lambda: Message.objects.create(
            mailbox=mailbox, thread=thread, message_id="d@x", date=timezone.now(), received_at=timezone.now()
        )
    )


@pytest.mark.django_db
def test_one_receipt_per_channel_event_id():
    blob = blob_store(data=RAW)

    def receipt(event_id: str) -> InboundReceipt:
        return InboundReceipt.objects.create(
            source="esp_webhook", esp="mailgun", event_id=event_id, blob=blob, received_at=timezone.now()
        )

    receipt("evt-1")
    _fails_in_database(lambda: receipt("evt-1"))
    # Arrivals without a channel id (e.g. SMTP) are not collapsed by this constraint.
    receipt("")
    receipt("")


@pytest.mark.django_db
def test_label_names_are_unique_per_mailbox_ignoring_case(mailbox, other_mailbox):
    Label.objects.create(mailbox=mailbox, name="Travel")
    Label.objects.create(mailbox=other_mailbox, name="Travel")
    _fails_in_database(lambda: Label.objects.create(mailbox=mailbox, name="travel"))


@pytest.mark.django_db
def test_one_system_label_per_role(mailbox):
    _fails_in_database(lambda: Label.objects.create(mailbox=mailbox, name="Inbox 2", role=Label.Role.INBOX))


@pytest.mark.django_db
def test_message_ids_are_unique_per_mailbox_in_the_thread_index(mailbox):
    thread = Thread.objects.create(mailbox_id=mailbox.id)
    ThreadMessageId.objects.create(mailbox_id=mailbox.id, message_id="m@x", thread=thread)
    _fails_in_database(lambda: ThreadMessageId.objects.create(mailbox_id=mailbox.id, message_id="m@x", thread=thread))


@pytest.mark.django_db
def test_suppression_is_unique_per_address_and_lowercase():
    Suppression.objects.create(address="bounced@example.org", reason="hard_bounce")
    _fails_in_database(lambda: Suppression.objects.create(address="bounced@example.org", reason="complaint"))
    _fails_in_database(lambda: Suppression.objects.create(address="Other@Example.org", reason="complaint"))


@pytest.mark.django_db
def test_domain_event_log_is_append_only():
    event = domain_event_record(event_type=DomainEvent.Type.MESSAGE_RECEIVED, subject_type="message", subject_id=1)
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        DomainEvent.objects.filter(pk=event.pk).update(subject_id=2)
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        DomainEvent.objects.filter(pk=event.pk).delete()
    assert DomainEvent.objects.get(pk=event.pk).subject_id == 1
