"""Writes for labels."""

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from mailbox.models import Label, Mailbox


def label_get_or_create(*, mailbox: Mailbox, name: str) -> Label:
    """The mailbox's label called ``name`` (any case), created as a user label if missing."""
    name = " ".join(name.split())[:100]
    existing = Label.objects.annotate(lower=Lower("name")).filter(mailbox=mailbox, lower=name.lower()).first()
    if existing is not None:
        return existing
    label = Label(mailbox=mailbox, name=name)
    label.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            label.save()
    except IntegrityError:
        # Created meanwhile by a concurrent import: the unique constraint kept one.
        return Label.objects.annotate(lower=Lower("name")).get(mailbox=mailbox, lower=name.lower())
    return label
