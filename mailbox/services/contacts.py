"""Writes for contacts: the addresses a mailbox corresponds with, for autocomplete."""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mailbox.models import Contact, Mailbox


@transaction.atomic
def contact_record(*, mailbox: Mailbox, address: str, display_name: str = "") -> Contact:
    """Count one more exchange with ``address`` (created on first use); a non-empty name given
    replaces the one known. Safe to call concurrently: the (mailbox, address) pair is unique."""
    address = address.strip().lower()
    contact, created = Contact.objects.get_or_create(
        mailbox=mailbox,
        address=address,
        defaults={"display_name": display_name, "times_contacted": 1, "last_contacted_at": timezone.now()},
    )
    if not created:
        contact.times_contacted = F("times_contacted") + 1
        contact.last_contacted_at = timezone.now()
        contact.display_name = display_name or contact.display_name
        contact.save(update_fields=["times_contacted", "last_contacted_at", "display_name"])
        contact.refresh_from_db(fields=["times_contacted"])
    return contact
