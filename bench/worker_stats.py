"""Loaded into the ingest bench's Celery workers (``--include bench.worker_stats``): counts the SQL
statements and tasks each worker runs and writes them, as JSON, to ``$BENCH_WORKER_STATS/<pid>.json``
when the worker shuts down. Only the bench sets that variable; nothing of this is in the product.
"""

import json
import os
from pathlib import Path

from celery.signals import task_prerun, worker_shutdown
from django.db import connection

_counts = {"statements": 0, "tasks": 0}


def _count(execute, sql, params, many, context):  # noqa: ANN001, ANN202 - Django's wrapper protocol
    _counts["statements"] += 1
    return execute(sql, params, many, context)


@task_prerun.connect
def _task_started(**kwargs: object) -> None:
    _counts["tasks"] += 1
    if _count not in connection.execute_wrappers:  # once per connection (a new one after a close)
        connection.execute_wrappers.append(_count)


@worker_shutdown.connect
def _write(**kwargs: object) -> None:
    folder = os.environ.get("BENCH_WORKER_STATS")
    if folder:
        (Path(folder) / f"{os.getpid()}.json").write_text(json.dumps(_counts))
