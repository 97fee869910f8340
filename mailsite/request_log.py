"""The request log: django-structlog's middleware (a request id, the user, a line when the request
ends), with the client's address read from the request itself rather than by ``django-ipware``.

ipware looks through a dozen forwarding headers for the first public address: about a twentieth
of the inbox page's CPU, and an address any client can write into X-Forwarded-For. Only our own
load balancer's word counts: the address it appended last to X-Forwarded-For when
``BEHIND_TLS_PROXY`` is on, else the peer of the connection."""

import structlog
from django.conf import settings
from django.http import HttpRequest
from django_structlog.middlewares import RequestMiddleware


def client_ip(request: HttpRequest) -> str:
    """The client's address as far as we can vouch for it (see the module's docstring)."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.rsplit(",", 1)[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


class RequestLogMiddleware(RequestMiddleware):
    @classmethod
    def bind_ip(cls, request: HttpRequest) -> None:
        structlog.contextvars.bind_contextvars(ip=client_ip(request))
