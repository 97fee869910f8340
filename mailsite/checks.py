"""System checks for settings that are unsafe in production."""

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def webhook_secret_check(app_configs: Any, **kwargs: Any) -> list[Warning]:
    """ESP webhooks without a shared secret accept mail from anyone who finds the URL."""
    if settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return []
    return [
        Warning(
            "ANYMAIL_WEBHOOK_SECRET is not set: the ESP webhooks under /anymail/ accept requests from anyone.",
            hint="Set ANYMAIL_WEBHOOK_SECRET to one or more user:password pairs and configure them at the ESP.",
            id="mailsite.W001",
        )
    ]
