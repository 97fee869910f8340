"""Every URL pattern of the project, tried as its owner, another user, an anonymous visitor and staff.

``COVERAGE`` says, per URL name, how to build a request for an object of the owner's mailbox and
what each kind of visitor must get. A URL pattern added without a row here fails
``test_every_url_pattern_is_covered``: add a row (the lead adds the other engineers' views at merge).

Kinds:
- ``owned``: the URL names one of the owner's objects. Owner: served; another user and staff
  (who have mailboxes of their own): 404; anonymous: sent to the login page.
- ``own``: a page of the visitor's own mailbox with no object in the URL. Everyone logged in gets
  their own; the owner's data never shows in anyone else's answer; anonymous: sent to login.
- ``public``: reachable logged out, by design (reason given).
- ``webhook``: authenticated otherwise than by a session (reason given): no login redirect, and a
  request without the credentials is refused with a 4xx.
- ``admin``: Django admin: anonymous visitors and non-staff users go to the admin login.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from mailbox.models import Label, ThreadLabel
from mailbox.services import mailbox_create, message_import_raw
from mailbox.services.preferences import user_label_create
from tests.mail import raw_message

SECRET_SUBJECT = "Secret-subject-of-alice"


@dataclass
class World:
    """The owner's mailbox with one thread and one user label; the visitors."""

    owner: Any
    thread_id: int
    label_id: int
    inbox_id: int

    def owner_thread_in_inbox(self) -> bool:
        return ThreadLabel.objects.filter(thread_id=self.thread_id, label_id=self.inbox_id).exists()


@dataclass(frozen=True)
class Access:
    kind: str
    method: str = "GET"
    kwargs: Callable[[World], dict] = lambda w: {}
    query: Callable[[World], dict] = lambda w: {}
    data: Callable[[World], dict] = lambda w: {}
    # For a POST another user may make with the owner's ids: the owner's data must be unchanged.
    unchanged: Callable[[World], bool] = lambda w: True
    reason: str = ""
    extra: dict = field(default_factory=dict)


COVERAGE: dict[str, Access] = {
    # --- ui-lists -----------------------------------------------------------------------------
    "inbox": Access("own"),
    "starred": Access("own"),
    "all_mail": Access("own"),
    "label": Access("owned", kwargs=lambda w: {"label_id": w.label_id}),
    "threads_action": Access(
        "own",
        method="POST",
        data=lambda w: {"action": "archive", "thread": [w.thread_id], "next": "/"},
        unchanged=World.owner_thread_in_inbox,
    ),
    "undo": Access("own", method="POST", data=lambda w: {"next": "/"}),
    "thread_row": Access("owned", kwargs=lambda w: {"thread_id": w.thread_id}, query=lambda w: {"label": w.inbox_id}),
    "events_since": Access("own", query=lambda w: {"after": 0}),
    "labels": Access("own"),
    "label_edit": Access(
        "owned",
        method="POST",
        kwargs=lambda w: {"label_id": w.label_id},
        data=lambda w: {f"l{w.label_id}-name": "Renamed", f"l{w.label_id}-colour": ""},
    ),
    "label_delete": Access("owned", method="POST", kwargs=lambda w: {"label_id": w.label_id}),
    "settings": Access("own"),
    # --- search ---------------------------------------------------------------------------------
    # Matches the secret thread without naming it (a query is echoed in the page).
    "search": Access("own", query=lambda w: {"q": "from:carol@example.org"}),
    # --- the project ----------------------------------------------------------------------------
    "login": Access("public", reason="the login page itself"),
    "logout": Access("public", method="POST", reason="logging out needs no login; it sends visitors to login"),
}
# Whole namespaces with one rule, each with its reason.
NAMESPACES: dict[str, Access] = {
    "admin": Access("admin", reason="Django admin checks is_staff itself and has its own login page"),
    "anymail": Access(
        "webhook",
        method="POST",
        reason="ESP webhooks: the ESP authenticates each POST by basic auth (ANYMAIL_WEBHOOK_SECRET) or a "
        "signature, never by a session",
    ),
}


def _patterns(resolver: URLResolver, namespace: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, ":".join(filter(None, [namespace, entry.namespace])))
        elif isinstance(entry, URLPattern):
            yield namespace, entry.name


ALL_PATTERNS = sorted(set(_patterns(get_resolver())), key=lambda p: (p[0], p[1] or ""))
NAMED = [name for ns, name in ALL_PATTERNS if not ns and name]


def test_every_url_pattern_is_covered():
    uncovered = [(ns, name) for ns, name in ALL_PATTERNS if ns.split(":")[0] not in NAMESPACES and name not in COVERAGE]
    assert uncovered == [], "add a row to COVERAGE (or a reasoned NAMESPACES entry) for each of these"
    stale = set(COVERAGE) - {name for ns, name in ALL_PATTERNS if not ns}
    assert stale == set(), "COVERAGE rows for URL names that no longer exist"


@pytest.fixture
def world(db) -> World:
    owner = mailbox_create(address="alice@example.test", password="pw-alice-1234", display_name="Alice")
    delivered = message_import_raw(mailbox=owner, raw=raw_message("secret@x", SECRET_SUBJECT), source_tag="t")
    label = user_label_create(mailbox=owner, name="Private")
    inbox = Label.objects.get(mailbox=owner, role=Label.Role.INBOX)
    return World(owner=owner, thread_id=delivered.message.thread_id, label_id=label.id, inbox_id=inbox.id)


def _visitor(role: str, world: World) -> Client:
    client = Client()
    if role == "owner":
        client.force_login(world.owner.user)
    elif role in ("other", "staff"):
        mailbox = mailbox_create(address=f"{role}@example.test", password=None)
        if role == "staff":
            mailbox.user.is_staff = mailbox.user.is_superuser = True
            mailbox.user.save(update_fields=["is_staff", "is_superuser"])
        client.force_login(mailbox.user)
    return client


def _request(client: Client, name: str, access: Access, world: World):
    url = reverse(name, kwargs=access.kwargs(world))
    if access.method == "POST":
        query = "?" + "&".join(f"{k}={v}" for k, v in access.query(world).items()) if access.query(world) else ""
        return client.post(url + query, access.data(world))
    return client.get(url, access.query(world))


def _sent_to_login(response) -> bool:
    return response.status_code == 302 and response.url.startswith("/accounts/login/")


CASES = [(name, role) for name in NAMED if name in COVERAGE for role in ("owner", "other", "anonymous", "staff")]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "role"), CASES, ids=[f"{n}-{r}" for n, r in CASES])
def test_each_visitor_gets_what_the_table_says(world, name, role):
    access = COVERAGE[name]
    response = _request(_visitor(role, world), name, access, world)
    body = response.content.decode(errors="replace")
    assert response.status_code < 500, body[:500]
    if access.kind == "public":
        assert response.status_code in (200, 302)
    elif role == "anonymous":
        assert _sent_to_login(response), (response.status_code, response.get("Location"))
    elif role == "owner":
        assert response.status_code in (200, 204, 302), response.status_code
    elif access.kind == "owned":
        assert response.status_code == 404
    else:
        assert response.status_code in (200, 302)
        assert SECRET_SUBJECT not in body
        if name == "events_since":
            assert world.thread_id not in response.json()["threads"]
        assert access.unchanged(world), "another user's request changed the owner's mailbox"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["anonymous", "other"])
def test_admin_sends_non_staff_to_its_login(world, role):
    admin_urls = [("admin", name) for ns, name in ALL_PATTERNS if ns == "admin" and name]
    assert admin_urls
    client = _visitor(role, world)
    for url in (reverse("admin:index"), reverse("admin:mailbox_message_changelist")):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(("/admin/login/", "/accounts/login/")), url
    assert _visitor("staff", world).get(reverse("admin:index")).status_code == 200


@pytest.mark.django_db
def test_webhooks_refuse_requests_without_their_credentials(world, settings):
    """No session login stands in the way of an ESP, and a POST without the shared secret or
    signature is refused: 4xx where the ESP is configured; an ESP whose keys are not set refuses
    everything (Anymail raises a configuration error, a 500 that the ESP retries until it is set)."""
    settings.ANYMAIL = {
        **getattr(settings, "ANYMAIL", {}),
        "WEBHOOK_SECRET": "esp:correct-secret",
        "BREVO_API_KEY": "test-key",
        "MAILGUN_WEBHOOK_SIGNING_KEY": "test-signing-key",
    }
    client = Client(raise_request_exception=False)
    names = [name for ns, name in ALL_PATTERNS if ns == "anymail" and name]
    assert names
    for name in names:
        response = client.post(reverse(f"anymail:{name}"), b"{}", content_type="application/json")
        assert response.status_code >= 400, (name, response.status_code)
    for name in ("amazon_ses_inbound_webhook", "mailgun_inbound_webhook", "postmark_inbound_webhook"):
        response = client.post(reverse(f"anymail:{name}"), b"{}", content_type="application/json")
        assert 400 <= response.status_code < 500, name
