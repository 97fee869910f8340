"""WSGI entry point (HTTP only; websockets need the ASGI app)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
application = get_wsgi_application()

from mailsite.startup import app_loaded_freeze  # noqa: E402  (needs the app registry ready)

app_loaded_freeze()
