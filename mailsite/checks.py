"""System checks for settings that are unsafe in production."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def webhook_secret_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """ESP webhooks without a shared secret would accept mail from anyone who finds the URL, so
    outside debug mode they refuse every request (delivery.webhooks): an error. In debug mode they
    accept anything: a warning."""
    if settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return []
    hint = "Set ANYMAIL_WEBHOOK_SECRET to one or more user:password pairs and configure them at the ESP."
    if settings.DEBUG:
        return [
            Warning(
                "ANYMAIL_WEBHOOK_SECRET is not set: in debug mode the ESP webhooks under /anymail/ accept "
                "requests from anyone.",
                hint=hint,
                id="mailsite.W001",
            )
        ]
    return [
        Error(
            "ANYMAIL_WEBHOOK_SECRET is not set: the ESP webhooks under /anymail/ refuse every request (503).",
            hint=hint,
            id="mailsite.E001",
        )
    ]
