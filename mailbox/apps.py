from django.apps import AppConfig


class MailboxConfig(AppConfig):
    """The product's metadata and UI: mailboxes, messages, labels, the inbox."""

    name = "mailbox"
