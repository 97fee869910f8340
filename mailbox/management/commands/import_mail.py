"""python manage.py import_mail --mailbox ADDRESS PATH...: mbox, Maildir and .eml into a mailbox."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from mailbox.importing import mail_import, mail_sources_find
from mailbox.models import Mailbox


class Command(BaseCommand):
    help = (
        "Import mbox files (Gmail Takeout included: labels, read and starred kept), Maildir folders and "
        ".eml files or folders of them into a mailbox. Safe to re-run: nothing is imported twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="mbox, Maildir, .eml or a folder")
        parser.add_argument("--mailbox", required=True, help="Address of the mailbox to import into")
        parser.add_argument(
            "--label", action="append", default=[], help="Also put every imported message under this label"
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar")

    def handle(self, *args: object, paths: list[Path], mailbox: str, label: list[str], **options: object) -> None:
        target = Mailbox.objects.filter(address=mailbox.strip().lower()).first()
        if target is None:
            raise CommandError(f"No mailbox {mailbox}.")
        try:
            sources, skipped = mail_sources_find(paths)
        except FileNotFoundError as error:
            raise CommandError(f"No such file or folder: {error}") from error
        for path in skipped:
            self.stderr.write(f"Skipped {path}: not an mbox, Maildir or message file.")
        started = time.monotonic()
        total = sum(source.count() for source in sources)
        with tqdm(total=total, unit="msg", disable=True if options["no_progress"] else None) as bar:
            result = mail_import(mailbox=target, sources=sources, extra_labels=tuple(label), progress=bar.update)
        elapsed = time.monotonic() - started
        for problem in result.unreadable:
            self.stderr.write(f"Unreadable: {problem}")
        rate = (result.imported + result.duplicates) / elapsed if elapsed else 0.0
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {result.imported} messages into {target.address} from {len(sources)} sources "
                f"({result.duplicates} already there, {result.empty} empty) in {elapsed:.1f}s, {rate:.0f} messages/s."
            )
        )
