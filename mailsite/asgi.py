"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry ready)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from mailsite.routing import websocket_urlpatterns  # noqa: E402
from mailsite.startup import app_loaded_freeze  # noqa: E402


def build_application(http_app=None) -> ProtocolTypeRouter:  # noqa: ANN001 - an ASGI callable
    """HTTP through Django, websockets through Channels with the session's user; a websocket from
    a foreign Origin is refused. Tests build a fresh one after changing settings."""
    return ProtocolTypeRouter(
        {
            "http": http_app or django_asgi_app,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )


application = build_application()
app_loaded_freeze()
