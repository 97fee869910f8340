"""What every ESP webhook view under /anymail/ needs before Anymail sees the request.

Anymail checks basic auth only when ``ANYMAIL["WEBHOOK_SECRET"]`` lists something: with the list
empty it lets every request through (and only warns). Outside debug mode Mailsite fails closed
instead: with no secret configured, every webhook request is refused.

The refusal is a 503, not a 4xx: the missing secret is our configuration's fault, not the caller's,
and ESPs stop retrying on most 4xx answers (Amazon SNS retries only 5xx and network errors), so a genuine
ESP would drop the mail; on a 5xx it retries, and the mail arrives once the secret is set. An
attacker gets nothing either way. ``manage.py check --deploy`` reports the same condition as an
error (mailsite.E001) before it ever reaches a request.
"""

from collections.abc import Callable
from functools import wraps

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse

logger = structlog.get_logger(__name__)


def webhook_secrets_configured() -> bool:
    """At least one "user:password" pair for the ESPs' basic auth (a list, or one string)."""
    return bool(getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET"))


def webhook_authentication_required() -> bool:
    """Unauthenticated webhooks are tolerated in debug mode only (``make run``: nothing configured)."""
    return not settings.DEBUG


def webhook_secret_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap an Anymail webhook view so it refuses every request, with 503 and an error log line,
    when authentication is required and no webhook secret is configured."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if webhook_authentication_required() and not webhook_secrets_configured():
            logger.error(
                "webhook.refused_unconfigured",
                path=request.path,
                reason="ANYMAIL_WEBHOOK_SECRET is not set: ESP webhooks refuse every request until it is",
            )
            return HttpResponse("Webhook authentication is not configured.\n", status=503, content_type="text/plain")
        return view(request, *args, **kwargs)

    return wrapped
