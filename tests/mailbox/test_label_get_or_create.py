"""A label that imports and ingest create (``label_get_or_create``) shows in open tabs as one the
user creates does: one ``label.changed`` event, published once the transaction commits, and only
by the call that created it."""

import pytest
from django.db import transaction

from mailbox.services.labels import label_get_or_create
from mailbox.services.preferences import user_label_create
from mailsite.models import DomainEvent

pytestmark = pytest.mark.django_db


def label_published_capture(monkeypatch) -> list[dict]:
    """The live events of label changes, appended when they would leave: on commit."""
    events: list[dict] = []

    def record(*, mailbox_id: int, event: dict) -> None:
        transaction.on_commit(lambda: events.append({**event, "mailbox_id": mailbox_id}))

    monkeypatch.setattr("mailbox.services.labels.mailbox_publish_on_commit", record)
    return events


@pytest.fixture
def published(monkeypatch) -> list[dict]:
    return label_published_capture(monkeypatch)


def _label_events(mailbox) -> list[DomainEvent]:
    return list(DomainEvent.objects.filter(mailbox_id=mailbox.id, event_type=DomainEvent.Type.LABEL_CHANGED))


def test_creating_a_label_publishes_label_changed_on_commit(mailbox, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        label = label_get_or_create(mailbox=mailbox, name="Receipts")
    assert published == []  # nothing leaves before the commit

    for callback in callbacks:
        callback()

    [event] = _label_events(mailbox)
    assert (event.subject_type, event.subject_id, event.payload) == ("label", label.id, {"label_id": label.id})
    live = {"type": "label.changed", "label_id": label.id, "event_id": event.id, "mailbox_id": mailbox.id}
    assert published == [live]


def test_finding_an_existing_label_publishes_nothing(mailbox, published, django_capture_on_commit_callbacks):
    work = user_label_create(mailbox=mailbox, name="Work")
    before = _label_events(mailbox)

    with django_capture_on_commit_callbacks(execute=True):
        assert label_get_or_create(mailbox=mailbox, name="  work ") == work

    assert _label_events(mailbox) == before
    assert published == []
