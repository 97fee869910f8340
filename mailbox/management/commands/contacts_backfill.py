"""Make contacts from the mail mailboxes already hold (delivered before contacts came from mail).

    python manage.py contacts_backfill [--mailbox ADDRESS]

Run once after upgrading to the release that records correspondents at delivery; safe to repeat
(counts are totals over each mailbox's mail, never added twice) and to interrupt between mailboxes.
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mailbox.models import Mailbox
from mailbox.services.contacts import contacts_backfill


class Command(BaseCommand):
    help = "Make contacts (address autocomplete) from the senders and recipients of mail already held."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", help="Only this mailbox (its primary address)")

    def handle(self, *args: object, mailbox: str | None, **options: object) -> None:
        mailboxes = Mailbox.objects.order_by("id")
        if mailbox:
            mailboxes = mailboxes.filter(address=mailbox.strip().lower())
            if not mailboxes.exists():
                raise CommandError(f"No mailbox {mailbox}.")
        for each in mailboxes.iterator():
            written = contacts_backfill(mailbox=each)
            self.stdout.write(f"{each.address}: {written} contacts")
