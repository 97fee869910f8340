"""Index messages that have no search document yet (delivered before search existed).

    python manage.py search_backfill [--batch-size 500]

Run once after upgrading to the release that added search; safe to repeat (it only touches rows
without a document) and to interrupt.
"""

from django.core.management.base import BaseCommand, CommandParser

from mailbox.search.indexing import BACKFILL_BATCH, documents_backfill


class Command(BaseCommand):
    help = "Write the full-text search documents of messages that have none, in batches by id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=BACKFILL_BATCH)

    def handle(self, *args: object, batch_size: int, **options: object) -> None:
        indexed = documents_backfill(batch_size=batch_size)
        self.stdout.write(f"indexed {indexed} messages")
