"""Fixtures shared by the delivery tests."""

import pytest

from delivery.models import OutboundDelivery
from mailbox.services.sending import OutgoingMail, message_send


@pytest.fixture
def delivery(mailbox, django_capture_on_commit_callbacks) -> OutboundDelivery:
    with django_capture_on_commit_callbacks(execute=True):
        message_send(
            mailbox=mailbox,
            mail=OutgoingMail(from_address=mailbox.address, to=["carol@example.org"], subject="Hi", text="Hello"),
        )
    return OutboundDelivery.objects.get()
