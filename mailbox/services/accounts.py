"""Writes for domains and mailboxes."""

from django.contrib.auth import get_user_model
from django.core.validators import validate_email
from django.db import transaction

from mailbox.models import Domain, Label, Mailbox

SYSTEM_LABELS = [
    (Label.Role.INBOX, "Inbox"),
    (Label.Role.SENT, "Sent"),
    (Label.Role.DRAFTS, "Drafts"),
    (Label.Role.SPAM, "Spam"),
    (Label.Role.TRASH, "Trash"),
]


@transaction.atomic
def domain_get_or_create(*, name: str) -> Domain:
    domain, _ = Domain.objects.get_or_create(name=name.strip().lower().rstrip("."))
    return domain


@transaction.atomic
def mailbox_create(*, address: str, password: str | None, display_name: str = "") -> Mailbox:
    """Create a user, their mailbox and its system labels (and the domain, if new).

    The user logs in with the address as username. ``password=None`` leaves the login unusable.
    """
    address = address.strip().lower()
    validate_email(address)
    local_part, domain_name = address.rsplit("@", 1)
    domain = domain_get_or_create(name=domain_name)
    user = get_user_model().objects.create_user(username=address, email=address, password=password)
    mailbox = Mailbox(user=user, domain=domain, local_part=local_part, address=address, display_name=display_name)
    mailbox.full_clean()
    mailbox.save()
    Label.objects.bulk_create(
        Label(mailbox=mailbox, name=name, role=role, position=position)
        for position, (role, name) in enumerate(SYSTEM_LABELS)
    )
    return mailbox
