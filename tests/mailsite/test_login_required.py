"""Every page needs a login: a URL pattern added later is covered without editing this test."""

import re

import pytest
from anymail import urls as anymail_urls
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

# ESP webhooks (Anymail, under /anymail/): the ESP authenticates each POST by basic auth or a
# signature, never by a session, so no login may stand in their way.
WEBHOOKS = {pattern.name for pattern in anymail_urls.urlpatterns}
# Authenticated by a bearer token or a staff session: anonymous requests get 401, not a login page
# (a Prometheus scraper follows no redirect). Tested in tests/delivery/test_metrics.py.
TOKEN_AUTHENTICATED = {"metrics"}
# Pages that must be reachable while logged out.
PUBLIC = {"login"} | WEBHOOKS | TOKEN_AUTHENTICATED
SAMPLE_VALUE = {"int": "1", "str": "x", "slug": "x", "path": "x", "uuid": "00000000-0000-0000-0000-000000000000"}


def _patterns(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, route, entry.namespace or namespace)
        elif isinstance(entry, URLPattern):
            yield route, entry.name, namespace


def _example_url(route: str) -> str:
    url = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE_VALUE[m.group(1) or "str"], route)
    # Regex routes (admin): drop anchors and fill groups with a sample value.
    url = re.sub(r"\(\?P<\w+>[^)]*\)", "1", url).replace("^", "").replace("$", "").replace("\\", "")
    return "/" + url


ALL_PATTERNS = list(_patterns(get_resolver()))
PRIVATE_PATTERNS = [p for p in ALL_PATTERNS if p[1] not in PUBLIC]


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "name", "namespace"), PRIVATE_PATTERNS, ids=[r for r, _, _ in PRIVATE_PATTERNS])
def test_anonymous_visitors_are_sent_to_a_login_page(client, route, name, namespace):
    response = client.get(_example_url(route))
    assert response.status_code == 302, (route, response.status_code)
    assert response.url.startswith(("/accounts/login/", "/admin/login/")), response.url


def test_the_login_pages_are_public(client):
    for route, name, _ in ALL_PATTERNS:
        if name in WEBHOOKS:
            # POST only, so no GET to try: the view is marked public for LoginRequiredMiddleware.
            assert resolve(reverse(f"anymail:{name}")).func.login_required is False, route
        elif name in TOKEN_AUTHENTICATED:
            assert client.get(_example_url(route)).status_code == 401, route
        elif name in PUBLIC:
            assert client.get(_example_url(route)).status_code == 200, route
