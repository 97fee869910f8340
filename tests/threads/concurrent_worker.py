"""A worker process for the concurrency test: delivers raw messages into a mailbox of the test database.

    python -m tests.threads.concurrent_worker DB_NAME WORK_DIR MAILBOX_ID NAME

Reads ``WORK_DIR/NAME-*.eml`` in name order, writes ``WORK_DIR/NAME.ready`` once connected, waits for
``WORK_DIR/go``, then delivers them one by one with ``message_import_raw``, each in its own transaction.
"""

import os
import sys
import time
from pathlib import Path


def main(db_name: str, work_dir: Path, mailbox_id: int, name: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
    import django
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = db_name
    settings.STORAGES = {
        **settings.STORAGES,
        "mail": {
            "BACKEND": "delivery.storage.DurableFileSystemStorage",
            "OPTIONS": {"location": str(work_dir / "mail"), "allow_overwrite": True},
        },
    }
    django.setup()
    from django.db import connection

    from mailbox.models import Mailbox
    from mailbox.services import message_import_raw

    mailbox = Mailbox.objects.get(pk=mailbox_id)
    raws = [path.read_bytes() for path in sorted(work_dir.glob(f"{name}-*.eml"))]
    (work_dir / f"{name}.ready").touch()
    while not (work_dir / "go").exists():
        time.sleep(0.005)
    for raw in raws:
        message_import_raw(mailbox=mailbox, raw=raw, source_tag=f"worker:{name}")
    connection.close()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
