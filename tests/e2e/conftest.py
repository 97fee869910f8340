"""Browser tests: the real ASGI application (HTTP and websockets) served by uvicorn in a thread of
the test process, against the test database, driven by Debian's chromium through Playwright.

Data the browser must see is committed (``transactional_db``), since the server's requests run on
their own connections. Screenshots go to ``test-artifacts/`` (CI keeps them).
"""

import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
import uvicorn
from django.db import connections

from tests.conftest import REPO_ROOT

CHROMIUM = shutil.which("chromium")
# Flags that work in these containers (no sandbox, no GPU, no network chatter of its own).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
T = TypeVar("T")
ARTIFACTS = REPO_ROOT / "test-artifacts"
PASSWORD = "correct horse battery staple"


@dataclass
class BrowserTripwire:
    """What a page did that a mail viewer must never let happen: dialogs (alert/confirm/prompt)
    and console errors are recorded for the test to assert on."""

    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture
def asgi_server(transactional_db, settings) -> Iterator[str]:
    """Serve the project's ASGI application on a free loopback port; yields its base URL."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_HSTS_SECONDS = 0
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    # The server's threads must not keep connections open past a request: the test database is
    # flushed after the test and dropped at the end of the session.
    db_settings = connections.settings["default"]
    kept_max_age = db_settings["CONN_MAX_AGE"]
    db_settings["CONN_MAX_AGE"] = 0

    from django.core.asgi import get_asgi_application

    from mailsite.asgi import build_application

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        build_application(get_asgi_application()), log_level="warning", lifespan="off", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        db_settings["CONN_MAX_AGE"] = kept_max_age


@pytest.fixture(scope="module")
def chromium_browser():
    """One Chromium per test module. Not per session: Playwright's event loop (and the switch
    below) must not outlive the browser tests, or every later test would run beside it."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on the main thread; the test's own ORM calls are
    # still plain synchronous code, which Django would otherwise refuse beside a running loop.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def tripwire() -> BrowserTripwire:
    return BrowserTripwire()


@pytest.fixture
def page(chromium_browser, asgi_server, tripwire, request):
    """A fresh browser context (no cookies) on the live server; a screenshot is saved at the end."""
    context = chromium_browser.new_context(base_url=asgi_server, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)

    def on_dialog(dialog) -> None:
        tripwire.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda msg: msg.type == "error" and tripwire.console_errors.append(msg.text))
    yield page
    screenshot(page, request.node.name, "final")
    context.close()


def screenshot(page, test_name: str, label: str) -> Path:
    """Save a full-page screenshot as a test artefact and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{test_name}-{label}")
    path = ARTIFACTS / f"{safe}.png"
    if not page.is_closed():
        page.screenshot(path=str(path), full_page=True)
    return path


def off_loop(func: Callable[..., T], /, *args: object, **kwargs: object) -> T:
    """Run ``func`` in a fresh thread and return its result.

    Playwright's sync API keeps an event loop running on the main thread, where asgiref's
    ``async_to_sync`` (used to publish live updates on commit) refuses to run. Domain calls that
    publish — delivering mail, flag changes — go through here in browser tests."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(func(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def press_key(page, key: str) -> None:
    """Press ``key`` once the current page's scripts have run. The list and conversation actions
    reload the page; a test that has seen the new page's markup (an ``expect`` on it) would
    otherwise press its next key before the new page's script runs (a wider window on a loaded
    machine), and no handler would hear it. It does not wait for a navigation still to come."""
    page.wait_for_load_state("load")
    page.keyboard.press(key)


def log_in(page, address: str, password: str = PASSWORD) -> None:
    """Log in through the real login form and wait for the inbox."""
    page.goto("/accounts/login/")
    page.get_by_label("Address").fill(address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name=re.compile("log in", re.IGNORECASE)).click()
    page.wait_for_url(re.compile(r"/$"))


def socket_events(page) -> list[dict]:
    """The live events the page's websockets receive from now on, in order (a JSON frame each)."""
    events: list[dict] = []

    def watch(ws) -> None:
        ws.on("framereceived", lambda payload: isinstance(payload, str) and events.append(json.loads(payload)))

    page.on("websocket", watch)
    return events


def wait_until(page, condition: Callable[[], bool], timeout: float = 10) -> None:
    """Wait, letting the page and its sockets go on, until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(50)
