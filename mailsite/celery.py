"""The Celery app. Configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections
from django_structlog.celery.steps import DjangoStructLogInitStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

app = Celery("mailsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Carries the request's correlation id into the tasks it queues, and into their logs.
app.steps["worker"].add(DjangoStructLogInitStep)
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender: Task, **kwargs: object) -> None:
    """Keep a worker's database connection across tasks as Django keeps it across requests
    (``CELERY_DB_REUSE_MAX`` stops Celery's fix-up from closing it every time). Not for eager
    tasks: they run inside the caller's transaction."""
    if not getattr(sender.request, "is_eager", False):
        close_old_connections()


def queue_depth(queue: str = "") -> int:
    """Messages waiting in the broker's ``queue`` (the default queue if empty); 0 in eager mode,
    where no broker holds anything."""
    if app.conf.task_always_eager:
        return 0
    name = queue or app.conf.task_default_queue
    with app.connection_for_read() as connection:
        try:
            declared = connection.default_channel.queue_declare(queue=name, passive=True)
        except connection.channel_errors:  # no such queue yet: nothing was ever left waiting in it
            return 0
        return declared.message_count
