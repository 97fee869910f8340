"""python manage.py seed_demo: a demo mailbox full of threaded mail, so a first run shows a living inbox."""

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mailbox.demo import demo_mailbox_seed
from mailbox.models import Mailbox

PROGRESS_EVERY = 100


class Command(BaseCommand):
    help = "Create demo@<MAILSITE_DEFAULT_DOMAIN> and deliver a few hundred generated messages into it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default="mailsite-demo", help="Login password of a new demo mailbox")
        parser.add_argument("--messages", type=int, default=300, help="How many messages to deliver")
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same mail (apart from the dates)")

    def handle(self, *args: object, password: str, messages: int, seed: int, **options: object) -> None:
        if messages < 1:
            raise CommandError("--messages must be at least 1.")
        address = f"demo@{settings.MAILSITE_DEFAULT_DOMAIN}".lower()
        self._check_address_free(address)
        started = time.monotonic()
        result = demo_mailbox_seed(
            address=address, password=password, count=messages, seed=seed, progress=self._progress
        )
        if result.existing:
            self.stdout.write(f"{address} already holds {result.existing} messages; nothing added.")
        else:
            elapsed = time.monotonic() - started
            self.stdout.write(self.style.SUCCESS(f"Delivered {result.delivered} messages in {elapsed:.1f}s."))
        # The password is only known when this run set it.
        shown = password if result.created_mailbox else "(unchanged: the one set when the mailbox was created)"
        self.stdout.write(f"Log in as {address} with password {shown}")

    def _check_address_free(self, address: str) -> None:
        """A user without a mailbox would make mailbox_create fail on the unique username."""
        taken = get_user_model().objects.filter(username=address).exists()
        if taken and not Mailbox.objects.filter(address=address).exists():
            raise CommandError(f"A user named {address} exists without a mailbox; remove it or pick another domain.")

    def _progress(self, done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0 or done == total:
            self.stdout.write(f"  {done}/{total} messages")
