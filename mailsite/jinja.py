"""The Jinja2 environment of the site's pages: all of them are rendered with Jinja2 (Django's template
engine cost most of the CPU of the most requested ones, the thread lists and the conversation), so
they share one base template, ``mailsite/jinja2/base.html``. Django's engine is left to the admin
and to the pages that extend no base (the message body's frame).

Templates live in the apps' ``jinja2/`` folders and are rendered with ``using="jinja2"``; they get ``url`` and
``static`` like Django's tags, both remembered per process (the routes and the static files'
manifest do not change while it runs)."""

from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.template.backends.utils import csrf_input
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import filesizeformat, truncatechars
from django.templatetags.static import static as django_static
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from jinja2 import Environment


@lru_cache(maxsize=4096)
def _reversed(name: str, args: tuple[Any, ...], prefix: str, urlconf: str | None) -> str:
    return reverse(name, args=args)


def url(name: str, *args: Any) -> str:
    """``{% url %}``: ``reverse``, remembered per process (a page names a dozen fixed routes)."""
    return _reversed(name, args, get_script_prefix(), get_urlconf())


@lru_cache(maxsize=256)
def static(path: str) -> str:
    """``{% static %}``: the file's (hashed) URL, looked up once per process."""
    return django_static(path)


@receiver(setting_changed)
def _forget(**kwargs: Any) -> None:
    """Tests change the static files' storage and URL settings; a new value gives new URLs."""
    static.cache_clear()
    _reversed.cache_clear()


def csrf(request: HttpRequest) -> dict[str, Any]:
    """A context processor: the page's CSRF field made once, however many forms carry it (each
    ``csrf_input`` of the engine masks the token anew, from the system's random source)."""
    return {"csrf_input": SimpleLazyObject(lambda: csrf_input(request))}


def date(value: datetime | None, format_string: str, zone: tzinfo | None = None) -> str:
    """Django's ``date`` filter, in the current time zone as Django's engine shows datetimes, or
    in ``zone`` (what ``{% timezone zone %}`` did)."""
    return date_filter(timezone.localtime(value, zone) if value is not None else value, format_string)


def environment(**options: Any) -> Environment:
    env = Environment(**options)  # noqa: S701 - the engine passes autoescape=True
    env.globals.update(url=url, static=static)
    # Django's renderings, where Jinja2's differ (filesizeformat counts in powers of ten, truncate
    # cuts at words and ends with "...").
    env.filters.update(date=date, filesize=filesizeformat, truncatechars=truncatechars)
    return env
