from django.apps import AppConfig


class MailboxConfig(AppConfig):
    """The product's metadata and UI: mailboxes, messages, labels, the inbox."""

    name = "mailbox"

    def ready(self) -> None:
        # Imported here, once the app registry is ready: the receiver reaches the models.
        from anymail.signals import inbound

        from mailbox.receivers import anymail_inbound_received

        inbound.connect(anymail_inbound_received, dispatch_uid="mailbox.anymail_inbound")
