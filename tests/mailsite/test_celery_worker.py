"""A real Celery worker starts with the project's configuration and answers over the Redis broker."""

import os
import socket
import subprocess
import sys
import time

from celery import current_app

from mailsite.celery import app
from tests.conftest import REPO_ROOT, requires_redis


def test_tasks_travel_as_json_and_are_acknowledged_late():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert current_app.main == "mailsite"


@requires_redis
def test_a_worker_process_boots_and_answers_a_ping():
    name = f"test-{os.getpid()}@{socket.gethostname()}"
    command = [sys.executable, "-m", "celery", "-A", "mailsite", "worker", "--pool=solo", "-n", name, "-Q", name]
    worker = subprocess.Popen(
        command, cwd=REPO_ROOT, env=os.environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        replies = []
        deadline = time.monotonic() + 60
        while not replies and time.monotonic() < deadline and worker.poll() is None:
            replies = app.control.ping(destination=[name], timeout=1.0)
        assert replies == [{name: {"ok": "pong"}}], worker.poll()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
