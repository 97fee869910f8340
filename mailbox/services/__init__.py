"""Writes of the mailbox app, one module per purpose; import from here."""

from mailbox.services.accounts import SYSTEM_LABELS, domain_get_or_create, mailbox_create
from mailbox.services.conversations import message_split_off, messages_move_to_thread, thread_merge, thread_split
from mailbox.services.delivering import Delivered, message_deliver, message_import_raw
from mailbox.services.flags import (
    messages_delete,
    messages_label_add,
    messages_label_remove,
    messages_mark_read,
    messages_restore,
    messages_star,
    messages_trash,
)

__all__ = [
    "SYSTEM_LABELS",
    "Delivered",
    "domain_get_or_create",
    "mailbox_create",
    "message_deliver",
    "message_import_raw",
    "message_split_off",
    "messages_delete",
    "messages_label_add",
    "messages_label_remove",
    "messages_mark_read",
    "messages_move_to_thread",
    "messages_restore",
    "messages_star",
    "messages_trash",
    "thread_merge",
    "thread_split",
]
