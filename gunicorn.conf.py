"""gunicorn's settings for the web (WSGI) process, read from this directory by ``gunicorn mailsite.wsgi``
(production and ``bench/ui_lists.py`` alike). Each can be overridden on the command line.

Threaded workers with keep-alive: a sync worker closes the connection after every response, so each
request paid a new TCP connection (about a fifth of a page's CPU); a gthread worker keeps it open for
the next request. A worker's threads share one interpreter, so the request's Python runs one thread at
a time, while the others wait on PostgreSQL or Redis; one worker per core with a few threads each keeps
the cores busy. Each thread holds its own database connection (``CONN_MAX_AGE``)."""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
threads = int(os.environ.get("WEB_THREADS", 4))
# Seconds an idle kept-alive connection stays open (behind a proxy that reuses its upstream connections,
# keep this above the proxy's own idle timeout).
keepalive = int(os.environ.get("WEB_KEEPALIVE", 5))
