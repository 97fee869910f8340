"""python manage.py runoutbound [--interval 2] [--once]: release and send due outbound mail in
this process, for the embedded mode, where there is no Celery beat or worker.

With a broker, the beat task ``delivery.outbound_release`` does this job; this command is for a
machine running without Redis (``make run``), where a sent message would otherwise wait forever.
"""

import time

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from delivery.outbound import outbound_release_due, outbound_send, outbound_sweep_interrupted


class Command(BaseCommand):
    help = "Send due outbound mail from this process (embedded mode: no Celery beat or worker)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between two looks.")
        parser.add_argument("--once", action="store_true", help="Send what is due now, then stop.")

    def handle(self, *args: object, interval: float, once: bool, **options: object) -> None:
        while True:
            close_old_connections()
            outbound_sweep_interrupted()
            due = outbound_release_due()
            if due:
                outcome = outbound_send(delivery_ids=due)
                self.stdout.write(
                    f"sent {outcome.sent}, retrying {outcome.retried}, failed {outcome.failed + outcome.dead}"
                )
            if once:
                return
            time.sleep(interval)
