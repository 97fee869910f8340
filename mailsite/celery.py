"""The Celery app. Configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery
from django_structlog.celery.steps import DjangoStructLogInitStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

app = Celery("mailsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Carries the request's correlation id into the tasks it queues, and into their logs.
app.steps["worker"].add(DjangoStructLogInitStep)
app.autodiscover_tasks()
