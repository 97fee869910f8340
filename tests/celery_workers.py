"""Real Celery workers for tests: a throw-away broker and worker processes on the test database.

The fixtures in tests/conftest.py use these: a test that asks for ``broker`` runs its own
``redis-server`` on a free port (never the machine's shared Redis, which other people's tests use)
and queues this process's tasks there; ``start_worker`` starts workers as subprocesses against it,
the test database and the test's mail storage. Used by the fault tests and by the browser test of
live updates across processes.
"""

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
from django.db import connection

from mailsite.celery import app

REPO_ROOT = Path(__file__).resolve().parent.parent
# The environment variable the fault tests' workers read to hang on their first parse.
SLOW_PARSE_MARKER = "MAILSITE_TEST_SLOW_PARSE_MARKER"
DEADLINE = 40  # seconds any one wait may take


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class PrivateRedis:
    """A throw-away redis-server on a free port, stopped and started again at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: self._answers(client), "redis-server to answer", timeout=15)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=15)
            self._process = None

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False


def forget_producer_pool() -> None:
    # Celery keeps the producer pool of the broker it first connected to (private API). Only
    # forgotten, not closed: kombu's registry would hand the closed pool to the next test.
    app._pool = None
    app.amqp._producer_pool = None


def worker_env(tmp_path: Path, broker_url: str, *, redis_url: str = "", **extra: str) -> dict[str, str]:
    """A process on the test database, the test's mail storage and the private broker; its cache
    and channel layer on ``redis_url`` (default: the private broker's Redis too)."""
    params = connection.get_connection_params()
    dropped = {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", SLOW_PARSE_MARKER}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("PG")}
    libpq = {"PGHOST": params.get("host"), "PGPORT": params.get("port"), "PGUSER": params.get("user")}
    libpq["PGPASSWORD"] = params.get("password")
    env.update({k: str(v) for k, v in libpq.items() if v})
    env.update(
        DATABASE_URL=f"postgres:///{params['dbname']}",
        REDIS_URL=redis_url or broker_url,
        CELERY_BROKER_URL=broker_url,
        SECRET_KEY=os.environ.get("SECRET_KEY") or "fault-tests-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        MAILSITE_VAR_DIR=str(tmp_path),  # mail storage: tmp_path/mail, as this test's own
        LOG_FORMAT="console",
        CELERY_SKIP_CHECKS="1",
        **extra,
    )
    return env
