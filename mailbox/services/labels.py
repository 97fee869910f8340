"""Writes for labels."""

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from mailbox.models import Label, Mailbox
from mailsite.events import domain_event_record
from mailsite.models import DomainEvent
from mailsite.realtime import mailbox_publish_on_commit


def label_get_or_create(*, mailbox: Mailbox, name: str) -> Label:
    """The mailbox's label called ``name`` (any case), created as a user label if missing. A label
    it creates (an import's, an ingested message's) shows in open tabs once committed, as one the
    user creates does (``label.changed``)."""
    name = " ".join(name.split())[:100]
    existing = Label.objects.annotate(lower=Lower("name")).filter(mailbox=mailbox, lower=name.lower()).first()
    if existing is not None:
        return existing
    label = Label(mailbox=mailbox, name=name)
    label.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            label.save()
            label_changed_notify(label)
    except IntegrityError:
        # Created meanwhile by a concurrent import: the unique constraint kept one (and its event).
        return Label.objects.annotate(lower=Lower("name")).get(mailbox=mailbox, lower=name.lower())
    return label


def label_changed_notify(label: Label) -> None:
    """Record that a user label was created, renamed or recoloured, and tell open tabs once it
    commits. One event for the label, whatever the number of threads carrying it: a tab redraws
    its sidebar and the chips it shows, not every thread."""
    event = domain_event_record(
        event_type=DomainEvent.Type.LABEL_CHANGED,
        subject_type="label",
        subject_id=label.pk,
        mailbox_id=label.mailbox_id,
        payload={"label_id": label.pk},
    )
    live = {"type": "label.changed", "label_id": label.pk, "event_id": event.id}
    mailbox_publish_on_commit(mailbox_id=label.mailbox_id, event=live)
