"""Parse tasks claim waiting receipts in batches: concurrent claims never take a receipt twice, and a
receipt claimed by a task that died is still completed, by its own task or by the sweeper."""

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction

from delivery.models import InboundReceipt
from delivery.services import inbound_receipt_create, inbound_receipts_claim
from mailbox.models import Message
from mailbox.services import receiving
from mailbox.services.receiving import receipts_process_batch
from mailbox.tasks import receipt_process_task, receipts_sweep_task
from mailsite.models import DomainEvent
from tests.mail import raw_message


def _receipts(count: int, address: str, tag: str = "claim") -> list[InboundReceipt]:
    return [
        inbound_receipt_create(
            source="smtp",
            raw=raw_message(f"{tag}-{n}@example.org", f"{tag} {n}"),
            event_id=f"{tag}-{n}",
            envelope_recipients=[address],
        ).receipt
        for n in range(count)
    ]


def _side_by_side(work: list[Callable[[], object]]) -> list[object]:
    """Run each callable in its own thread (its own database connection), released together."""
    start = threading.Barrier(len(work))
    results: list[object] = [None] * len(work)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait(10)
            results[index] = work[index]()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_take_along_the_same_receipt(mailbox):
    named = _receipts(6, mailbox.address, tag="named")
    # Redelivered tasks' receipts: claimed by the task naming them, never taken along by another.
    InboundReceipt.objects.filter(pk__in=[r.id for r in named]).update(attempts=1)
    waiting = _receipts(24, mailbox.address)

    claims = _side_by_side(
        [lambda r=receipt: inbound_receipts_claim(receipt_ids=[r.id], fill_to=5) for receipt in named]
    )

    assert [ids[0] for ids in claims] == [r.id for r in named]  # named receipts come first (lowest ids)
    taken_along = [receipt_id for ids in claims for receipt_id in ids[1:]]
    assert len(taken_along) == len(set(taken_along)) == 24  # all taken along, each by one claim
    assert all(len(ids) <= 5 for ids in claims)
    assert set(InboundReceipt.objects.filter(pk__in=[r.id for r in waiting]).values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db
def test_a_task_takes_along_only_receipts_for_the_same_recipients(mailbox, other_mailbox):
    own, same = _receipts(2, mailbox.address)
    elsewhere = _receipts(1, other_mailbox.address, tag="elsewhere")[0]

    assert inbound_receipts_claim(receipt_ids=[own.id], fill_to=10) == [own.id, same.id]
    assert InboundReceipt.objects.get(pk=elsewhere.id).attempts == 0  # left for its own task
    assert inbound_receipts_claim(receipt_ids=[elsewhere.id], fill_to=10) == [elsewhere.id]


@pytest.mark.django_db
def test_a_task_whose_receipt_is_done_takes_along_receipts_for_its_recipients(mailbox, other_mailbox):
    """A worker behind a backlog keeps taking full batches rather than tasks that find nothing to do."""
    done, waiting = _receipts(2, mailbox.address)
    elsewhere = _receipts(1, other_mailbox.address, tag="elsewhere")[0]
    InboundReceipt.objects.filter(pk=done.id).update(status=InboundReceipt.Status.PARSED)

    assert inbound_receipts_claim(receipt_ids=[done.id], fill_to=10) == [waiting.id]
    assert inbound_receipts_claim(receipt_ids=[], fill_to=10) == []
    assert InboundReceipt.objects.get(pk=elsewhere.id).attempts == 0


@pytest.mark.django_db(transaction=True)
def test_workers_processing_side_by_side_deliver_each_receipt_once(mailbox, other_mailbox):
    """Tasks as two or more workers run them: each names its own receipt and takes along others
    waiting. Receipts named by one task and taken along by another are processed by one of them."""
    receipts = _receipts(12, mailbox.address) + _receipts(6, other_mailbox.address, tag="other")

    _side_by_side([lambda r=receipt: receipt_process_task.apply(args=[r.id]) for receipt in receipts])

    assert set(InboundReceipt.objects.values_list("status", flat=True)) == {InboundReceipt.Status.PARSED}
    assert Message.objects.filter(mailbox=mailbox).count() == 12
    assert Message.objects.filter(mailbox=other_mailbox).count() == 6
    assert sorted(Message.objects.values_list("receipt_id", flat=True)) == sorted(r.id for r in receipts)
    assert DomainEvent.objects.filter(event_type=DomainEvent.Type.MESSAGE_RECEIVED).count() == 18


@pytest.mark.django_db(transaction=True)
def test_a_claimed_receipt_held_elsewhere_when_the_batch_locks_is_handed_back(mailbox, monkeypatch):
    """Not left for the sweeper: the task processes it alone (or queues it alone)."""
    own, along = _receipts(2, mailbox.address)
    real_lock = receiving.inbound_receipts_lock
    held, release = threading.Event(), threading.Event()

    def hold_along() -> None:
        with transaction.atomic():  # e.g. another worker's claim looking at it right then
            InboundReceipt.objects.select_for_update().get(pk=along.id)
            held.set()
            release.wait(10)
        connection.close()

    def lock_while_held(*, receipt_ids: list[int]) -> list[InboundReceipt]:
        holder = threading.Thread(target=hold_along)
        holder.start()
        assert held.wait(10)
        try:
            return real_lock(receipt_ids=receipt_ids)
        finally:
            release.set()
            holder.join()

    monkeypatch.setattr(receiving, "inbound_receipts_lock", lock_while_held)
    outcome = receiving.receipts_process_batch(receipt_ids=[own.id], fill_to=10)

    assert (outcome.finished, outcome.handed_back) == ([own.id], [along.id])
    assert InboundReceipt.objects.get(pk=along.id).status == InboundReceipt.Status.RECEIVED


@pytest.mark.django_db
def test_a_receipt_claimed_by_a_task_that_died_is_completed_by_its_own_task(mailbox):
    own, taken_along = _receipts(2, mailbox.address)
    # A worker claimed both (the attempt is committed with the claim), then died before its batch.
    assert inbound_receipts_claim(receipt_ids=[own.id], fill_to=10) == [own.id, taken_along.id]

    # Neither is taken along by another task's batch any more: each waits for its own task.
    other = _receipts(1, mailbox.address, tag="later")[0]
    assert receipts_process_batch(receipt_ids=[other.id], fill_to=10).finished == [other.id]
    assert InboundReceipt.objects.get(pk=taken_along.id).status == InboundReceipt.Status.RECEIVED

    # The broker redelivers the dead worker's task (acks late); the other receipt's task runs too.
    receipt_process_task.apply(args=[own.id])
    receipt_process_task.apply(args=[taken_along.id])

    for receipt in (own, taken_along):
        receipt.refresh_from_db()
        assert (receipt.status, receipt.attempts) == (InboundReceipt.Status.PARSED, 2)
        assert Message.objects.filter(receipt=receipt).count() == 1


@pytest.mark.django_db
def test_a_receipt_claimed_by_a_task_that_died_is_completed_by_the_sweeper(mailbox, settings):
    """Its own task found it claimed and returned, then the claiming worker died with it."""
    own, taken_along = _receipts(2, mailbox.address)
    inbound_receipts_claim(receipt_ids=[own.id], fill_to=10)  # a worker claims both, then dies
    settings.MAILSITE_RECEIPT_SWEEP_AFTER = timedelta(0)

    assert receipts_sweep_task.apply().get() == 2

    for receipt in (own, taken_along):
        receipt.refresh_from_db()
        assert receipt.status == InboundReceipt.Status.PARSED
        assert Message.objects.filter(receipt=receipt).count() == 1
    assert receipts_sweep_task.apply().get() == 0
