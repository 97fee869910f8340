"""python manage.py runsmtpd [--host H --port P]: receive mail for our mailboxes over SMTP.

The protocol lives in ``delivery.smtp``; this command wires it to the mailbox app: which
recipients are ours, and the front door every channel uses (``inbound_accept``).
"""

import signal
import threading

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from delivery.models import InboundReceipt
from delivery.smtp import InboundSMTPHandler, RecipientStatus, SMTPArrival, smtp_controller
from delivery.tracking import verp_address_known
from mailbox.selectors import mailboxes_for_addresses
from mailbox.services.ingest import inbound_accept


def smtp_recipient_status(address: str) -> RecipientStatus:
    """Ours (a mailbox or alias), unknown on one of our domains, or foreign (no relaying)."""
    mailboxes, unknown = mailboxes_for_addresses(addresses=[address])
    if mailboxes or (unknown and verp_address_known(address=address)):  # VERP: a bounce for our mail
        return RecipientStatus.LOCAL
    return RecipientStatus.UNKNOWN if unknown else RecipientStatus.FOREIGN


def smtp_accept(arrival: SMTPArrival) -> None:
    """Store the bytes and the receipt, committed, before the listener answers 250."""
    inbound_accept(
        source=InboundReceipt.Source.SMTP,
        raw=arrival.raw,
        event_id=arrival.event_id,
        envelope_sender=arrival.envelope_sender,
        envelope_recipients=arrival.envelope_recipients,
        metadata={"smtp": arrival.extras},
    )


def smtp_listener(*, host: str, port: int, max_message_bytes: int | None = None) -> Controller:
    """The listener wired to our mailboxes, not yet started."""
    handler = InboundSMTPHandler(
        recipient_status=smtp_recipient_status,
        accept=smtp_accept,
        max_recipients=settings.MAILSITE_SMTP_MAX_RECIPIENTS,
    )
    return smtp_controller(
        handler=handler,
        host=host,
        port=port,
        max_message_bytes=max_message_bytes or settings.MAILSITE_SMTP_MAX_MESSAGE_BYTES,
        server_hostname=settings.MAILSITE_SMTP_HOSTNAME,
    )


class Command(BaseCommand):
    help = "Run the inbound SMTP listener: mail for our mailboxes only, 250 once it is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.MAILSITE_SMTP_HOST, help="Address to listen on")
        parser.add_argument("--port", type=int, default=settings.MAILSITE_SMTP_PORT, help="Port to listen on")

    def handle(self, *args: object, host: str, port: int, **options: object) -> None:
        listener = smtp_listener(host=host, port=port)
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        listener.start()
        limit = settings.MAILSITE_SMTP_MAX_MESSAGE_BYTES
        self.stdout.write(f"SMTP listener on {host}:{port} (messages up to {limit} bytes); Ctrl-C or SIGTERM stops it.")
        stopping.wait()
        # In-flight transactions are cut: a sender without our 250 retries, and one that had it is stored.
        listener.stop()
        self.stdout.write("SMTP listener stopped.")
