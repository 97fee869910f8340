"""Recount every thread's summary and label index from its messages and report drift.

    python manage.py threads_check [--mailbox ID] [--fix] [--batch 500] [--show 50]

Walks the threads table once in id order, in batches; each batch is recounted with a few
queries per mailbox in it. Without ``--fix`` any drift makes the command fail (exit status 1),
so a scheduled run alerts; with ``--fix`` each drifted batch is locked, re-checked and rewritten.
"""

from collections import defaultdict

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mailbox.services.conversations import ThreadDrift, thread_drift_find, thread_drift_repair
from threads.models import Thread


class Command(BaseCommand):
    help = "Recount thread summaries and label counts from the messages; report drift, --fix repairs it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", type=int, help="Only the threads of this mailbox id.")
        parser.add_argument("--fix", action="store_true", help="Rewrite drifted threads from their recount.")
        parser.add_argument("--batch", type=int, default=500, help="Threads per batch.")
        parser.add_argument("--show", type=int, default=50, help="Drifted threads listed at most.")

    def handle(self, *args: object, **options: object) -> None:
        checked, drifts = 0, []
        for batch in _thread_batches(mailbox_id=options["mailbox"], size=options["batch"]):
            checked += sum(len(ids) for ids in batch.values())
            for mailbox_id, ids in batch.items():
                find = thread_drift_repair if options["fix"] else thread_drift_find
                drifts += find(mailbox_id=mailbox_id, thread_ids=ids)
        self._report(checked, drifts, shown=options["show"], fixed=options["fix"])
        if drifts and not options["fix"]:
            raise CommandError(f"{len(drifts)} thread(s) drifted from their messages; run with --fix to repair")

    def _report(self, checked: int, drifts: list[ThreadDrift], *, shown: int, fixed: bool) -> None:
        for drift in drifts[:shown]:
            self.stdout.write(f"thread {drift.thread_id} (mailbox {drift.mailbox_id}): {', '.join(drift.fields)}")
        if len(drifts) > shown:
            self.stdout.write(f"… and {len(drifts) - shown} more")
        verb = "repaired" if fixed else "drifted"
        self.stdout.write(f"checked {checked} thread(s): {len(drifts)} {verb}")


def _thread_batches(*, mailbox_id: int | None, size: int):  # noqa: ANN202 - yields {mailbox id: [thread ids]}
    """Thread ids in id order, ``size`` at a time, grouped by mailbox."""
    threads = Thread.objects.order_by("pk")
    if mailbox_id is not None:
        threads = threads.filter(mailbox_id=mailbox_id)
    last = 0
    while rows := list(threads.filter(pk__gt=last).values_list("pk", "mailbox_id")[:size]):
        batch: dict[int, list[int]] = defaultdict(list)
        for thread_id, owner in rows:
            batch[owner].append(thread_id)
        yield batch
        last = rows[-1][0]
