"""The web (WSGI) process: Granian serving ``mailsite.wsgi``, as production and ``bench/ui_lists.py`` run it.

    python -m mailsite.web      # WEB_HOST, WEB_PORT, WEB_CONCURRENCY, WEB_THREADS, WEB_KEEPALIVE, LOG_LEVEL

Why Granian rather than gunicorn: under gunicorn's threaded workers a kept-alive connection stays
with the worker that accepted it, and the idle worker wins the race to accept, so a handful of busy
connections (a load balancer's pooled upstream connections, say) tended to pile onto one worker,
which then served at the speed of one core while the other idled. With 8 connections on 2 cores all
8 landed on one gunicorn worker in 15 runs of 20 (the inbox then gave ~260 requests/s instead of
~500), on one Granian worker in 1 of 20. Granian's HTTP side is Rust, which also costs less CPU per
request. Each worker runs the application in up to ``WEB_THREADS`` threads, started on demand, each
keeping its own database connection (``CONN_MAX_AGE``), so a worker holds at most that many.

A kept-alive connection idle for ``WEB_KEEPALIVE`` seconds (default 75) is closed: keep it above the
idle timeout of the proxy in front (nginx's upstream keepalive and AWS load balancers use 60 s), or
the proxy sends a request down a connection the server is closing, and its client gets a 502.

Websockets are not served here: the ASGI process (``mailsite.asgi``) holds them."""

import os
from collections.abc import Mapping
from typing import Any

from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels

APPLICATION = "mailsite.wsgi:application"


def server_options(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Granian's settings, sized from the environment: one worker process per core (each runs the
    application's Python on one core at a time) with a few threads each, which wait on PostgreSQL
    and Redis in turn."""
    return {
        "target": APPLICATION,
        "interface": Interfaces.WSGI,
        "address": environ.get("WEB_HOST", "0.0.0.0"),  # noqa: S104 - a server behind the load balancer
        "port": int(environ.get("WEB_PORT", "8000")),
        "workers": int(environ.get("WEB_CONCURRENCY", "") or os.cpu_count() or 1),
        "blocking_threads": int(environ.get("WEB_THREADS", "4")),
        # A thread idle this long ends; its database connection is closed when the garbage collector
        # takes it, not by Django. Kept long, so a quiet spell does not cost every thread a new one.
        "blocking_threads_idle_timeout": 600,
        # Granian closes a connection that waits this long for a request's headers, the idle wait
        # between two requests of a kept-alive connection included.
        "http1_settings": HTTP1Settings(header_read_timeout=int(environ.get("WEB_KEEPALIVE", "75")) * 1000),
        "websockets": False,
        "respawn_failed_workers": True,
        # A deploy's SIGTERM: requests in flight get this long to finish before the workers are killed.
        "workers_kill_timeout": 30,
        "log_level": _log_level(environ.get("LOG_LEVEL", "INFO")),
    }


def _log_level(name: str) -> LogLevels:
    """Granian's level for the Django ``LOG_LEVEL`` name (which also accepts ``FATAL``)."""
    name = name.lower()
    return LogLevels("critical" if name == "fatal" else name)


def main() -> None:
    Granian(**server_options()).serve()


if __name__ == "__main__":
    main()
