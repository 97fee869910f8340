"""Unknown local recipients are recorded as data on the receipt (``unknown_recipients``), on the
one-by-one and the batch paths, and staff find them in admin by filter."""

import pytest
from django.urls import reverse

from delivery.models import InboundReceipt
from delivery.services import inbound_receipt_create
from mailbox.models import Message
from mailbox.services.receiving import receipt_process, receipts_process_batch
from tests.mail import raw_message


def _receipt(*, recipients: list[str], subject: str = "Hello") -> InboundReceipt:
    raw = raw_message(f"{subject}@example.org", subject, to=", ".join(recipients))
    return inbound_receipt_create(source=InboundReceipt.Source.IMPORT, raw=raw, envelope_recipients=recipients).receipt


@pytest.mark.django_db
def test_one_by_one_records_unknown_recipients_and_delivers_to_the_known(mailbox):
    receipt = _receipt(recipients=["alice@example.test", "Nobody@Example.test", "ghost@example.test"])

    receipt_process(receipt_id=receipt.id)
    receipt.refresh_from_db()

    assert receipt.status == InboundReceipt.Status.PARSED
    assert sorted(receipt.unknown_recipients) == ["ghost@example.test", "nobody@example.test"]
    assert receipt.last_error == ""
    assert Message.objects.filter(mailbox=mailbox).count() == 1


@pytest.mark.django_db
def test_a_batch_records_each_receipts_own_unknown_recipients(mailbox):
    with_unknown = _receipt(recipients=["alice@example.test", "nobody@example.test"], subject="one")
    without = _receipt(recipients=["alice@example.test"], subject="two")

    outcome = receipts_process_batch(receipt_ids=[with_unknown.id, without.id])

    assert sorted(outcome.finished) == sorted([with_unknown.id, without.id])
    with_unknown.refresh_from_db()
    without.refresh_from_db()
    assert with_unknown.unknown_recipients == ["nobody@example.test"]
    assert without.unknown_recipients == []
    assert with_unknown.last_error == without.last_error == ""


@pytest.mark.django_db
def test_quarantined_for_no_local_recipient_still_lists_the_unknown_ones(mailbox):
    receipt = _receipt(recipients=["nobody@example.test"])

    receipt_process(receipt_id=receipt.id)
    receipt.refresh_from_db()

    assert receipt.status == InboundReceipt.Status.QUARANTINED
    assert receipt.unknown_recipients == ["nobody@example.test"]


@pytest.mark.django_db
def test_admin_shows_and_filters_receipts_by_unknown_recipient(admin_client, mailbox):
    for recipients, subject in (
        (["alice@example.test", "nobody@example.test"], "a"),
        (["alice@example.test", "ghost@example.test"], "b"),
        (["alice@example.test"], "c"),
    ):
        receipt_process(receipt_id=_receipt(recipients=recipients, subject=subject).id)
    url = reverse("admin:delivery_inboundreceipt_changelist")

    page = admin_client.get(url)
    choices = next(spec for spec in page.context["cl"].filter_specs if spec.title == "unknown recipient")
    assert [value for value, _ in choices.lookup_choices] == ["__any__", "ghost@example.test", "nobody@example.test"]
    assert b"nobody@example.test" in page.content

    def shown(value: str) -> list[list[str]]:
        response = admin_client.get(url, {"unknown_recipient": value})
        assert response.status_code == 200
        return sorted(r.unknown_recipients for r in response.context["cl"].result_list)

    assert shown("__any__") == [["ghost@example.test"], ["nobody@example.test"]]
    assert shown("nobody@example.test") == [["nobody@example.test"]]
