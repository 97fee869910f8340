"""Writes of the mailbox app, one module per purpose; import from here."""

from mailbox.services.accounts import SYSTEM_LABELS, domain_get_or_create, mailbox_create
from mailbox.services.delivering import Delivered, message_deliver, message_import_raw

__all__ = [
    "SYSTEM_LABELS",
    "Delivered",
    "domain_get_or_create",
    "mailbox_create",
    "message_deliver",
    "message_import_raw",
]
