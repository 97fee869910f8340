"""Shared fixtures. Test data is built with the domain's own services, never raw saves."""

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from mailsite.celery import app
from tests.celery_workers import PrivateRedis, forget_producer_pool, wait_for, worker_env

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPORA = REPO_ROOT.parent / "shared" / "corpora"


requires_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="needs a real Redis (broker, worker or channel layer): set REDIS_URL; CI always does",
)


@pytest.fixture(autouse=True)
def _celery_eager(request):
    """Tasks run in the test's process, as in the embedded mode, even where REDIS_URL configures a
    real broker (CI); tests marked ``real_broker`` talk to the broker and a worker instead."""
    if request.node.get_closest_marker("real_broker"):
        yield
        return
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """Tests create many users; the production hasher would take most of their time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _plain_http(settings) -> None:
    """The test client speaks plain HTTP; with production settings (CI sets DATABASE_URL) every
    request would otherwise be redirected to HTTPS. The deploy check covers the real setting."""
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _mail_storage_in_tmp(settings, tmp_path: Path) -> None:
    """Each test writes raw mail into its own folder, never into var/; static files are served
    from the source folders (no collectstatic manifest in tests)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "mail": {
            "BACKEND": "delivery.storage.DurableFileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "mail"), "allow_overwrite": True},
        },
    }


@pytest.fixture(autouse=True, scope="session")
def _jinja2_templates_instrumented():
    """What Django's test set-up does for its own engine: a Jinja2 page sends ``template_rendered``,
    so the test client's ``response.context`` holds the context of the pages rendered with Jinja2."""
    from django.template.backends.jinja2 import Template
    from django.test.signals import template_rendered

    render = Template.render

    def instrumented(self, context=None, request=None):
        context = {} if context is None else context
        content = render(self, context, request)
        template_rendered.send(sender=self, template=self, context=context)
        return content

    Template.render = instrumented
    yield
    Template.render = render


@pytest.fixture
def mailbox(db):
    from mailbox.services import mailbox_create

    return mailbox_create(address="alice@example.test", password="correct horse battery staple", display_name="Alice")


@pytest.fixture
def other_mailbox(db):
    from mailbox.services import mailbox_create

    return mailbox_create(address="bob@example.test", password="correct horse battery staple", display_name="Bob")


# --- Real Celery workers (tests.celery_workers) ------------------------------------------


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker(private_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    """This process queues tasks on the private Redis, for real (not eagerly)."""
    saved = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url, app.conf.task_always_eager = private_redis.url, False
    forget_producer_pool()
    yield private_redis
    app.conf.broker_url, app.conf.task_always_eager = saved
    forget_producer_pool()


@pytest.fixture
def start_worker(tmp_path: Path, broker: PrivateRedis) -> Iterator[Callable[..., subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start(
        name: str, *, pool: str = "prefork", include: str = "", redis_url: str = "", **env: str
    ) -> subprocess.Popen:
        """Start worker ``name`` (importing module ``include`` too) and wait until it answers."""
        node = f"{name}-{os.getpid()}@{socket.gethostname()}"
        command = [sys.executable, "-m", "celery", "-A", "mailsite", "worker", f"--pool={pool}", "--concurrency=1"]
        command += ["-n", node, "--without-gossip", "--without-mingle", "-l", "INFO"]
        command += ["--include", include] if include else []
        log = (tmp_path / f"{name}.log").open("w")
        worker = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=worker_env(tmp_path, broker.url, redis_url=redis_url, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(worker)
        wait_for(
            lambda: worker.poll() is not None or app.control.ping(destination=[node], timeout=0.5),
            f"worker {name} to answer",
        )
        assert worker.poll() is None, (tmp_path / f"{name}.log").read_text()
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
