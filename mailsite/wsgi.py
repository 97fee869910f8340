"""WSGI entry point (HTTP only; websockets need the ASGI app), served by ``mailsite.web``."""

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.wsgi import get_wsgi_application

# The CGI variables the server sets on every request from the request itself (PEP 3333), so never
# the process's. CONTENT_TYPE and CONTENT_LENGTH are not among them: a request without a body has
# neither, and the process's would show through.
_REQUEST_VARIABLES = frozenset(
    {
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "REMOTE_ADDR",
    }
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def without_process_environment(app: WSGIApp, process_environment: Mapping[str, str]) -> WSGIApp:
    """``app`` with the process's environment variables taken out of each request's ``environ``.

    Granian starts every request's ``environ`` from a copy of ``os.environ``, as CGI did, so without
    this ``request.META`` would carry ``DATABASE_URL`` and ``SECRET_KEY`` into anything that shows it
    (an error report lists META), and a variable named like a header (``HTTP_X_FORWARDED_FOR``) would
    read as one the client sent. A header the client did send keeps its value; one that happens to
    equal a process variable of the same name is dropped with it, which no client relies on."""
    inherited = {name: value for name, value in process_environment.items() if name not in _REQUEST_VARIABLES}

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        for name, value in inherited.items():
            if environ.get(name) == value:
                del environ[name]
        return app(environ, start_response)

    return application


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
application = without_process_environment(get_wsgi_application(), os.environ)

from mailsite.startup import app_loaded_freeze  # noqa: E402  (needs the app registry ready)

app_loaded_freeze()
