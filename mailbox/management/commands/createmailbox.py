"""python manage.py createmailbox ADDRESS --password P: a user, their mailbox, and the domain if new."""

import getpass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mailbox.models import Mailbox
from mailbox.services import mailbox_create


class Command(BaseCommand):
    help = "Create a user and their mailbox (and the mail domain, if new). The user logs in with the address."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address", help="The mailbox's primary address, e.g. alice@example.com")
        parser.add_argument("--password", help="The login password; asked for when omitted")
        parser.add_argument("--display-name", default="", help="The name shown on sent mail")
        parser.add_argument(
            "--skip-password-validation", action="store_true", help="Accept a password the validators reject"
        )

    def handle(self, *args: object, address: str, password: str | None, display_name: str, **options: object) -> None:
        address = address.strip().lower()
        if (
            Mailbox.objects.filter(address=address).exists()
            or get_user_model().objects.filter(username=address).exists()
        ):
            raise CommandError(f"{address} already exists.")
        if password is None:
            password = getpass.getpass(f"Password for {address}: ")
        if not options["skip_password_validation"]:
            try:
                validate_password(password, user=get_user_model()(username=address, email=address))
            except ValidationError as error:
                raise CommandError("Password rejected: " + " ".join(error.messages)) from error
        try:
            mailbox = mailbox_create(address=address, password=password, display_name=display_name)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(self.style.SUCCESS(f"Created mailbox {mailbox.address} (log in with that address)."))
