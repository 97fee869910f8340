"""The web (WSGI) process: Granian serving ``mailsite.wsgi``, as production and ``bench/ui_lists.py`` run it.

    python -m mailsite.web            # WEB_HOST, WEB_PORT, WEB_CONCURRENCY, WEB_THREADS, LOG_LEVEL

Why Granian rather than gunicorn: under gunicorn's threaded workers a kept-alive connection stays
with the worker that accepted it, and the idle worker wins the race to accept, so a handful of busy
connections (a load balancer's pooled upstream connections, say) tended to pile onto one worker,
which then served at the speed of one core while the other idled. With 8 connections on 2 cores all
8 landed on one gunicorn worker in 15 runs of 20 (the inbox then gave ~260 requests/s instead of
~500), on one Granian worker in 1 of 20. Granian's HTTP side is Rust, which also costs less CPU per
request, and each worker runs the application in a fixed set of threads, each keeping its own
database connection (``CONN_MAX_AGE``), so a worker holds at most ``WEB_THREADS`` connections.

Websockets are not served here: the ASGI process (``mailsite.asgi``) holds them."""

import os
from collections.abc import Mapping
from typing import Any

from granian import Granian
from granian.constants import Interfaces
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
        # A thread idle this long ends, and its database connection is dropped with it: kept long, so
        # that a quiet spell does not cost every thread a new connection.
        "blocking_threads_idle_timeout": 600,
        "websockets": False,
        "respawn_failed_workers": True,
        # A deploy's SIGTERM: requests in flight get this long to finish before the workers are killed.
        "workers_kill_timeout": 30,
        "log_level": LogLevels(environ.get("LOG_LEVEL", "INFO").lower()),
    }


def main() -> None:
    Granian(**server_options()).serve()


if __name__ == "__main__":
    main()
