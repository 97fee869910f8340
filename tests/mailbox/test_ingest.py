"""The inbound pipeline from raw bytes to messages: store first, parse later, nothing lost."""

import logging
import re
import threading
from datetime import timedelta

import pytest
import structlog
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection, transaction
from django.utils import timezone

from delivery.models import InboundReceipt
from delivery.selectors import blob_read
from delivery.services import inbound_receipt_create, inbound_receipt_retry_schedule, inbound_receipts_sweep
from mailbox.models import Alias, Label, Message, MessageLabel
from mailbox.services import domain_get_or_create, message_import_raw
from mailbox.services.ingest import inbound_accept, inbound_reprocess
from mailbox.services.receiving import receipt_process, receipts_process_batch
from mailbox.tasks import MAX_ATTEMPTS, receipt_process_task, receipts_process_batch_task, receipts_sweep_task
from mailsite.celery import app
from mailsite.models import DomainEvent
from tests.mail import logged_events, raw_message

RAW = raw_message("first@example.org", "Quarterly numbers", to="alice@example.test, bob@example.test")


def _labels(message: Message) -> set[str]:
    return set(MessageLabel.objects.filter(message=message).values_list("label__name", flat=True))


@pytest.mark.django_db
def test_accept_stores_bytes_and_receipt_then_parses_on_commit(
    mailbox, other_mailbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stored = inbound_accept(
            source="esp_webhook", raw=RAW, esp="mailgun", event_id="evt-1", envelope_recipients=["alice@example.test"]
        )

    assert stored.created
    receipt = InboundReceipt.objects.get()
    assert blob_read(blob=receipt.blob) == RAW
    assert receipt.status == InboundReceipt.Status.PARSED
    assert receipt.attempts == 1
    message = Message.objects.get()
    assert (message.mailbox_id, message.source_tag, message.receipt_id) == (mailbox.id, "esp:mailgun", receipt.id)
    assert _labels(message) == {"Inbox"}


@pytest.mark.django_db
def test_replayed_arrival_changes_nothing_and_queues_nothing(mailbox, django_capture_on_commit_callbacks):
    def accept():
        return inbound_accept(source="esp_webhook", raw=RAW, esp="mailgun", event_id="evt-1")

    with django_capture_on_commit_callbacks(execute=True):
        first = accept()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = [accept() for _ in range(3)]

    assert not any(s.created for s in again)
    assert {s.receipt.id for s in again} == {first.receipt.id}
    assert callbacks == []
    assert InboundReceipt.objects.count() == 1
    assert Message.objects.count() == 1


def _receipt(raw: bytes = RAW, **fields) -> InboundReceipt:
    return inbound_receipt_create(source="smtp", raw=raw, **fields).receipt


@pytest.mark.django_db
def test_one_copy_per_local_recipient_including_aliases(mailbox, other_mailbox):
    Alias.objects.create(mailbox=other_mailbox, domain=other_mailbox.domain, address="robert@example.test")
    receipt = _receipt(envelope_recipients=["alice@example.test", "Robert@Example.test", "carol@elsewhere.org"])

    outcome = receipt_process(receipt_id=receipt.id)

    assert outcome.delivered == 2
    assert set(Message.objects.values_list("mailbox_id", flat=True)) == {mailbox.id, other_mailbox.id}
    assert len(set(Message.objects.values_list("blob_id", flat=True))) == 1


@pytest.mark.django_db
def test_unknown_local_recipient_is_recorded_not_dropped(mailbox):
    receipt = _receipt(envelope_recipients=["alice@example.test", "nobody@example.test"])

    outcome = receipt_process(receipt_id=receipt.id)
    receipt.refresh_from_db()

    assert outcome.unknown_recipients == ("nobody@example.test",)
    assert receipt.status == InboundReceipt.Status.PARSED
    assert receipt.unknown_recipients == ["nobody@example.test"]  # data, not a note in last_error
    assert receipt.last_error == ""


@pytest.mark.django_db
def test_mail_for_no_local_mailbox_is_quarantined_with_its_bytes(mailbox):
    receipt = _receipt(envelope_recipients=["someone@elsewhere.org"])

    receipt_process(receipt_id=receipt.id)
    receipt.refresh_from_db()

    assert receipt.status == InboundReceipt.Status.QUARANTINED
    assert "no local recipient" in receipt.last_error
    assert blob_read(blob=receipt.blob) == RAW
    assert DomainEvent.objects.filter(event_type="receipt.quarantined", subject_id=receipt.id).exists()


@pytest.mark.django_db
def test_bytes_that_are_no_message_are_quarantined(mailbox):
    garbage = b"\x00\x01\x02 not a message at all \xff\xfe"
    receipt = _receipt(raw=garbage, envelope_recipients=["alice@example.test"])

    receipt_process(receipt_id=receipt.id)
    receipt.refresh_from_db()

    assert receipt.status == InboundReceipt.Status.QUARANTINED
    assert blob_read(blob=receipt.blob) == garbage
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_without_envelope_the_header_addressees_are_used(mailbox, other_mailbox):
    receipt = _receipt()
    assert receipt_process(receipt_id=receipt.id).delivered == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("verdicts", "auth_header", "folder"),
    [
        ({}, "", "Inbox"),
        ({"spam": True}, "", "Spam"),
        ({}, "mx.example.test; spf=pass; dkim=pass; dmarc=fail (p=reject)", "Spam"),
        ({}, "mx.example.test; spf=pass; dkim=pass; dmarc=pass", "Inbox"),
        # Written by the sender (another authserv-id): neither fails nor passes the mail.
        ({}, "mx.forger.example; spf=fail; dkim=fail; dmarc=fail (p=reject)", "Inbox"),
    ],
)
def test_baseline_spam_routing(mailbox, settings, verdicts, auth_header, folder):
    settings.MAILSITE_AUTHSERV_IDS = ["mx.example.test"]
    raw = (f"Authentication-Results: {auth_header}\r\n".encode() if auth_header else b"") + RAW
    receipt = _receipt(raw=raw, envelope_recipients=["alice@example.test"], verdicts=verdicts)

    receipt_process(receipt_id=receipt.id)

    message = Message.objects.get()
    assert _labels(message) == {folder}
    if auth_header.startswith("mx.example.test"):
        assert message.authentication_results["dmarc"] in {"pass", "fail"}
    else:
        assert message.authentication_results == {}


@pytest.mark.django_db
def test_import_hints_set_labels_and_flags(mailbox):
    metadata = {"label_roles": ["inbox"], "labels": ["Travel", "Receipts"], "is_read": True, "is_starred": True}
    receipt = _receipt(envelope_recipients=["alice@example.test"], metadata=metadata)

    receipt_process(receipt_id=receipt.id)

    message = Message.objects.get()
    assert _labels(message) == {"Inbox", "Travel", "Receipts"}
    assert (message.is_read, message.is_starred) == (True, True)
    assert Label.objects.filter(mailbox=mailbox, name="Travel", role="").exists()


@pytest.mark.django_db
def test_processing_twice_delivers_once(mailbox):
    receipt = _receipt(envelope_recipients=["alice@example.test"])
    receipt_process(receipt_id=receipt.id)
    InboundReceipt.objects.filter(pk=receipt.pk).update(status=InboundReceipt.Status.RECEIVED)
    receipt_process(receipt_id=receipt.id)
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_a_vanished_receipt_is_ignored():
    assert receipt_process(receipt_id=987654) is None


@pytest.fixture
def _eager_retries_run_through():
    """Eager mode runs each retry inside the previous attempt; let the whole chain run to its end
    instead of propagating the first Retry, as a worker would."""
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


@pytest.mark.django_db
@pytest.mark.usefixtures("_eager_retries_run_through")
def test_storage_failure_retries_then_fails_and_reprocess_recovers(mailbox, django_capture_on_commit_callbacks):
    receipt = _receipt(envelope_recipients=["alice@example.test"])
    storage = storages["mail"]
    kept = blob_read(blob=receipt.blob)
    storage.delete(receipt.blob.storage_key)  # the object store loses it for a while

    receipt_process_task.apply(args=[receipt.id])
    receipt.refresh_from_db()
    assert receipt.status == InboundReceipt.Status.FAILED
    # The first try as a batch, then the receipt alone, retried until its tries in all are used up.
    assert receipt.attempts == MAX_ATTEMPTS
    assert "gave up after 10 attempts" in receipt.last_error
    assert receipt.retry_at is not None  # each back-off was recorded, so the sweeper kept out of it

    storage.save(receipt.blob.storage_key, ContentFile(kept))
    with django_capture_on_commit_callbacks(execute=True):
        assert inbound_reprocess(receipt_ids=[receipt.id]) == 1
    receipt.refresh_from_db()
    assert receipt.status == InboundReceipt.Status.PARSED
    assert Message.objects.filter(mailbox=mailbox).count() == 1


@pytest.mark.django_db
def test_sweeper_completes_receipts_whose_task_was_lost(mailbox, settings):
    settings.MAILSITE_RECEIPT_SWEEP_AFTER = timedelta(0)
    receipt = _receipt(envelope_recipients=["alice@example.test"])  # stored, but never queued

    assert receipts_sweep_task.apply().get() == 1
    receipt.refresh_from_db()
    assert receipt.status == InboundReceipt.Status.PARSED
    assert receipts_sweep_task.apply().get() == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("_eager_retries_run_through")
def test_tries_are_counted_per_receipt_whichever_task_makes_them(mailbox):
    """A second chain of retries (e.g. one the sweeper started) shares the receipt's budget."""
    receipt = _receipt(envelope_recipients=["alice@example.test"])
    InboundReceipt.objects.filter(pk=receipt.pk).update(attempts=MAX_ATTEMPTS - 1)  # another chain's tries
    storages["mail"].delete(receipt.blob.storage_key)

    receipt_process_task.apply(args=[receipt.id], kwargs={"batch": False})

    receipt.refresh_from_db()
    assert (receipt.status, receipt.attempts) == (InboundReceipt.Status.FAILED, MAX_ATTEMPTS)


@pytest.mark.django_db
def test_reprocess_counts_tries_afresh(mailbox, django_capture_on_commit_callbacks):
    receipt = _receipt(envelope_recipients=["alice@example.test"])
    InboundReceipt.objects.filter(pk=receipt.pk).update(status=InboundReceipt.Status.FAILED, attempts=MAX_ATTEMPTS)

    with django_capture_on_commit_callbacks(execute=True):
        inbound_reprocess(receipt_ids=[receipt.id])

    receipt.refresh_from_db()
    assert (receipt.status, receipt.attempts) == (InboundReceipt.Status.PARSED, 1)


@pytest.mark.django_db
def test_a_receipt_waiting_out_a_back_off_is_not_swept(mailbox, settings):
    settings.MAILSITE_RECEIPT_SWEEP_AFTER = timedelta(seconds=120)
    receipt = _receipt(envelope_recipients=["alice@example.test"])
    long_ago = timezone.now() - timedelta(hours=2)
    InboundReceipt.objects.filter(pk=receipt.pk).update(received_at=long_ago)
    inbound_receipt_retry_schedule(receipt_id=receipt.id, at=timezone.now() + timedelta(minutes=5))

    assert receipts_sweep_task.apply().get() == 0
    receipt.refresh_from_db()
    assert receipt.status == InboundReceipt.Status.RECEIVED


SWEEP_AFTER = timedelta(seconds=120)


@pytest.mark.django_db
def test_a_swept_receipt_is_queued_again_only_after_waiting_as_long_again(mailbox):
    receipt = _receipt(envelope_recipients=["alice@example.test"])
    arrived = receipt.received_at
    after = SWEEP_AFTER

    def sweep(at_seconds: int) -> list[int]:
        now = arrived + timedelta(seconds=at_seconds)
        return [receipt_id for receipt_id, _ in inbound_receipts_sweep(due_before=now - after, now=now)]

    assert sweep(100) == []  # not yet two minutes late
    assert sweep(200) == [receipt.id]  # 200 s waited: next due 200 s later, at 400 s
    assert sweep(500) == []  # due at 400 s, only 100 s late
    assert sweep(530) == [receipt.id]
    receipt.refresh_from_db()
    assert receipt.retry_at == arrived + timedelta(seconds=530 + 130)


@pytest.mark.django_db
def test_parsed_receipts_are_not_reprocessed(mailbox):
    receipt = _receipt(envelope_recipients=["alice@example.test"])
    receipt_process(receipt_id=receipt.id)
    assert inbound_reprocess(receipt_ids=[receipt.id]) == 0


@pytest.mark.django_db
def test_delivery_into_an_existing_thread_keeps_import_and_inbound_apart(mailbox):
    domain_get_or_create(name="example.test")
    message_import_raw(mailbox=mailbox, raw=RAW, source_tag="import")
    receipt = _receipt(envelope_recipients=["alice@example.test"])
    receipt_process(receipt_id=receipt.id)
    assert Message.objects.count() == 1


REUSED_FIRST = raw_message("reused@example.org", "The original")
REUSED_SECOND = raw_message("reused@example.org", "Another message, same Message-ID")


def _deliver_each_alone(raws: list[bytes]) -> None:
    for raw in raws:
        receipt_process(receipt_id=_receipt(raw=raw, envelope_recipients=["alice@example.test"]).id)


def _deliver_as_one_batch(raws: list[bytes]) -> None:
    receipts = [_receipt(raw=raw, envelope_recipients=["alice@example.test"]) for raw in raws]
    assert receipts_process_batch(receipt_ids=[r.id for r in receipts]).finished


@pytest.mark.django_db
@pytest.mark.parametrize("deliver", [_deliver_each_alone, _deliver_as_one_batch])
def test_a_message_id_reused_by_different_bytes_keeps_both_with_their_own_ids(mailbox, deliver):
    deliver([REUSED_FIRST, REUSED_SECOND])

    first, second = Message.objects.filter(mailbox=mailbox).order_by("id")
    assert first.subject == "The original"
    assert first.message_id == "reused@example.org"
    second_blob = second.blob
    assert second.message_id == f"reused.dup-{second_blob.sha256[:16]}@example.org"
    # The header as sent is kept in the raw message.
    assert b"Message-ID: <reused@example.org>" in blob_read(blob=second_blob)

    # Delivered again (another arrival of the same bytes): nothing changes, the made-up id is stable.
    _deliver_each_alone([REUSED_SECOND])
    assert list(Message.objects.filter(mailbox=mailbox).order_by("id").values_list("message_id", flat=True)) == [
        "reused@example.org",
        second.message_id,
    ]


@pytest.mark.django_db
def test_a_byte_identical_copy_from_another_channel_is_a_no_op(mailbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        inbound_accept(source="smtp", raw=REUSED_FIRST, envelope_recipients=[mailbox.address])
        inbound_accept(
            source="esp_webhook", esp="postmark", raw=REUSED_FIRST, event_id="e1", envelope_recipients=[mailbox.address]
        )

    assert InboundReceipt.objects.filter(status=InboundReceipt.Status.PARSED).count() == 2
    assert list(Message.objects.filter(mailbox=mailbox).values_list("message_id", flat=True)) == ["reused@example.org"]


@pytest.mark.django_db
@pytest.mark.usefixtures("_eager_retries_run_through")
def test_one_bad_receipt_in_a_batch_neither_loses_nor_blocks_the_others(mailbox):
    receipts = [
        _receipt(raw=raw_message(f"batch-{n}@example.org", f"Batch {n}"), envelope_recipients=["alice@example.test"])
        for n in range(3)
    ]
    storages["mail"].delete(receipts[1].blob.storage_key)  # its bytes cannot be read: the batch fails

    receipts_process_batch_task.apply(args=[[r.id for r in receipts]])

    statuses = [InboundReceipt.objects.get(pk=r.id).status for r in receipts]
    assert statuses == [InboundReceipt.Status.PARSED, InboundReceipt.Status.FAILED, InboundReceipt.Status.PARSED]
    assert sorted(Message.objects.values_list("message_id", flat=True)) == [
        "batch-0@example.org",
        "batch-2@example.org",
    ]
    # The rolled-back batch left nothing behind: one event per delivered message.
    assert DomainEvent.objects.filter(event_type=DomainEvent.Type.MESSAGE_RECEIVED).count() == 2


@pytest.mark.django_db
def test_a_task_takes_along_receipts_waiting_their_first_try_but_not_those_in_back_off(mailbox):
    waiting = _receipt(raw=raw_message("waiting@example.org", "Waiting"), envelope_recipients=[mailbox.address])
    backing_off = _receipt(raw=raw_message("retry@example.org", "Retrying"), envelope_recipients=[mailbox.address])
    InboundReceipt.objects.filter(pk=backing_off.id).update(attempts=1)
    own = _receipt(raw=raw_message("own@example.org", "Own"), envelope_recipients=[mailbox.address])

    outcome = receipts_process_batch(receipt_ids=[own.id], fill_to=10)

    assert sorted(outcome.finished) == sorted([own.id, waiting.id])
    assert InboundReceipt.objects.get(pk=backing_off.id).status == InboundReceipt.Status.RECEIVED
    assert InboundReceipt.objects.get(pk=own.id).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_receipt_another_worker_holds_is_skipped_not_waited_for(mailbox):
    receipt = _receipt(envelope_recipients=[mailbox.address])
    locked, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        with transaction.atomic():
            InboundReceipt.objects.select_for_update().get(pk=receipt.id)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=other_worker)
    holder.start()
    try:
        assert locked.wait(10)
        outcome = receipts_process_batch(receipt_ids=[receipt.id], fill_to=10)
    finally:
        release.set()
        holder.join()

    assert outcome.finished == []
    assert outcome.handed_back == []
    assert InboundReceipt.objects.get(pk=receipt.id).status == InboundReceipt.Status.RECEIVED


@pytest.mark.django_db
def test_arrivals_outside_a_web_request_get_a_correlation_id_each(mailbox):
    first = inbound_accept(source="smtp", raw=RAW, envelope_recipients=["alice@example.test"])
    second = inbound_accept(source="smtp", raw=REUSED_FIRST, envelope_recipients=["alice@example.test"])
    assert re.fullmatch(r"[0-9a-f]{32}", first.receipt.correlation_id)
    assert first.receipt.correlation_id != second.receipt.correlation_id


@pytest.mark.django_db
def test_parse_logs_carry_the_receipts_correlation_id(mailbox, caplog):
    alone = _receipt(envelope_recipients=["alice@example.test"], correlation_id="req-alone")
    raws = [raw_message(f"batched-{n}@example.org", f"Batched {n}") for n in range(2)]
    batched = [_receipt(raw=r, envelope_recipients=["alice@example.test"], correlation_id="req-batch") for r in raws]

    with caplog.at_level(logging.INFO):
        receipt_process(receipt_id=alone.id)
        receipts_process_batch(receipt_ids=[r.id for r in batched])

    events = logged_events(caplog)
    assert events["inbound.parsed"]["correlation_id"] == "req-alone"
    assert events["inbound.batch_parsed"]["correlation_ids"] == ["req-batch"]
    assert "correlation_id" not in structlog.contextvars.get_contextvars()  # bound for that receipt only
