"""The web (WSGI) process as production runs it: ``python -m mailsite.web`` (Granian) on the test
database, spoken to over real HTTP; and its settings and the ``environ`` its requests get."""

import http.client
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import global_settings, settings
from django.db import connection
from django.test import Client

from mailsite.web import server_options
from mailsite.wsgi import without_process_environment
from tests.celery_workers import REPO_ROOT, free_port, wait_for, worker_env

PASSWORD = "correct horse battery staple"
THREADS = 2


def test_one_worker_per_core_with_a_few_threads_by_default():
    options = server_options({})

    assert options["target"] == "mailsite.wsgi:application"
    assert options["interface"] == "wsgi"
    assert options["workers"] >= 1
    assert options["blocking_threads"] == 4
    assert options["websockets"] is False  # the ASGI process holds them
    assert (options["address"], options["port"]) == ("0.0.0.0", 8000)
    # Above the 60 s idle timeout of the usual proxies in front, so they never reuse a closing one.
    assert options["http1_settings"].header_read_timeout == 75_000


def test_the_environment_sizes_and_binds_the_server():
    environment = {"WEB_CONCURRENCY": "3", "WEB_THREADS": "6", "WEB_HOST": "127.0.0.1", "WEB_PORT": "9001"}

    options = server_options({**environment, "WEB_KEEPALIVE": "120", "LOG_LEVEL": "FATAL"})

    assert (options["workers"], options["blocking_threads"]) == (3, 6)
    assert (options["address"], options["port"]) == ("127.0.0.1", 9001)
    assert options["http1_settings"].header_read_timeout == 120_000
    assert options["log_level"] == "critical"  # Django's FATAL


def test_process_variables_are_taken_out_of_a_requests_environ():
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return [b""]

    process = {
        "SECRET_KEY": "s3cret",
        "HTTP_X_FORWARDED_FOR": "203.0.113.66",
        "HTTP_ACCEPT": "*/*",
        "PATH_INFO": "/",
        "CONTENT_TYPE": "text/x-process",
        "CONTENT_LENGTH": "999",
    }
    application = without_process_environment(app, process)
    # What Granian passes: the process's variables, then the request's own over them (a GET
    # without a body has no CONTENT_TYPE or CONTENT_LENGTH of its own).
    application({**process, "PATH_INFO": "/", "HTTP_ACCEPT": "text/html", "REMOTE_ADDR": "10.0.0.9"}, None)

    assert not {"SECRET_KEY", "CONTENT_TYPE", "CONTENT_LENGTH"} & set(seen)
    assert "HTTP_X_FORWARDED_FOR" not in seen  # not a header this client sent
    assert seen["HTTP_ACCEPT"] == "text/html"  # a header it sent keeps its value
    assert seen["PATH_INFO"] == "/"  # the request's own variables stay, even when the process has one alike
    assert seen["REMOTE_ADDR"] == "10.0.0.9"


@dataclass
class WebProcess:
    port: int
    log: Path

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def finished_requests(self) -> list[dict]:
        lines = (json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{"))
        return [line for line in lines if line.get("event") == "request_finished"]


@pytest.fixture
def web_process(transactional_db, tmp_path, private_redis) -> Iterator[WebProcess]:
    """``python -m mailsite.web`` with one worker of two threads, its static files collected as a
    release does, logging JSON to a file; with ``HTTP_X_FORWARDED_FOR`` set in its environment, as a
    variable named like a header could be."""
    port = free_port()
    environment = worker_env(tmp_path, private_redis.url) | {
        "SECRET_KEY": settings.SECRET_KEY,  # the sessions this process signs are the server's too
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": str(THREADS),
        "STATIC_ROOT": str(tmp_path / "static"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "BEHIND_TLS_PROXY": "1",
        "HTTP_X_FORWARDED_FOR": "203.0.113.66",
    }
    release = [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"]
    subprocess.run(release, cwd=REPO_ROOT, env=environment, check=True)
    log = tmp_path / "web.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "mailsite.web"], cwd=REPO_ROOT, env=environment, stdout=output, stderr=output
        )
    process = WebProcess(port=port, log=log)
    try:
        try:
            wait_for(lambda: server.poll() is not None or _answers(process), "the web process to answer")
        finally:
            assert server.poll() is None, log.read_text()
        yield process
    finally:
        server.terminate()
        server.wait(timeout=40)


def _answers(process: WebProcess) -> bool:
    try:
        client = process.connect()
        client.request("GET", "/accounts/login/")
        return client.getresponse().status == 200
    except OSError:
        return False


def _get(client: http.client.HTTPConnection, path: str, cookies: SimpleCookie) -> http.client.HTTPResponse:
    client.request("GET", path, headers={"Cookie": _cookie_header(cookies)})
    response = client.getresponse()
    response.body = response.read()
    _keep_cookies(response, cookies)
    return response


def _keep_cookies(response: http.client.HTTPResponse, cookies: SimpleCookie) -> None:
    for header in response.headers.get_all("Set-Cookie") or []:
        cookies.load(header)


def _cookie_header(cookies: SimpleCookie) -> str:
    return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())


def _log_in(client: http.client.HTTPConnection, cookies: SimpleCookie, address: str) -> None:
    form = _get(client, "/accounts/login/", cookies).body.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urlencode({"username": address, "password": PASSWORD, "csrfmiddlewaretoken": token})
    headers = {"Cookie": _cookie_header(cookies), "Content-Type": "application/x-www-form-urlencoded"}
    client.request("POST", "/accounts/login/", body=body, headers=headers)
    response = client.getresponse()
    response.read()
    assert response.status == 302, response.status
    _keep_cookies(response, cookies)


def _session_of(user) -> SimpleCookie:
    """A logged-in session's cookie, kept in the database where the server finds it."""
    browser = Client()
    browser.force_login(user)
    return SimpleCookie({settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value})


def test_the_web_process_serves_a_logged_in_inbox_over_one_kept_alive_connection(web_process, mailbox, settings):
    # The server checks passwords with the production hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    mailbox.user.set_password(PASSWORD)
    mailbox.user.save(update_fields=["password"])
    client, cookies = web_process.connect(), SimpleCookie()

    _log_in(client, cookies, mailbox.address)
    kept = client.sock
    inbox = _get(client, "/", cookies)

    assert inbox.status == 200
    assert "<title>Inbox" in inbox.body.decode()
    assert "script-src" in inbox.headers["Content-Security-Policy"]
    assert client.sock is kept  # the same TCP connection served the login and the page
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', inbox.body.decode()).group(1)
    assert _get(client, stylesheet, cookies).status == 200


def test_the_request_log_names_the_peer_not_a_process_variable(web_process, mailbox):
    client = web_process.connect()

    _get(client, "/accounts/login/", SimpleCookie())

    wait_for(web_process.finished_requests, "the request's log line")
    # The process's HTTP_X_FORWARDED_FOR did not pass for a header the client (or our proxy) sent.
    assert {line["ip"] for line in web_process.finished_requests()} == {"127.0.0.1"}


def test_a_worker_holds_no_more_database_connections_than_threads(web_process, mailbox):
    def browse(cookies: SimpleCookie) -> None:
        client = web_process.connect()
        for _ in range(5):
            assert _get(client, "/", cookies).status == 200

    with ThreadPoolExecutor(max_workers=6) as browsers:
        for browsing in [browsers.submit(browse, _session_of(mailbox.user)) for _ in range(6)]:
            browsing.result()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert 1 <= cursor.fetchone()[0] <= THREADS
