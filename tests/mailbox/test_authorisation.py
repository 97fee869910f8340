"""Every URL pattern and websocket route of the project, tried as its owner, another user, an
anonymous visitor and staff (and, for websockets, the owner's session from a foreign Origin).

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
- ``signed``: reachable with a signed token in the URL instead of a session (reason given): without a
  valid token, anonymous visitors are sent to login and everyone else gets a 4xx.
- ``token``: read by a machine with a bearer token (reason given): anonymous visitors get 401, logged-in
  users 403 unless they are staff.
- ``admin``: Django admin: anonymous visitors and non-staff users go to the admin login.
"""

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from mailbox.models import Attachment, Draft, Label, ThreadLabel
from mailbox.services import mailbox_create, message_import_raw
from mailbox.services.drafts import DraftFields, draft_create
from mailbox.services.preferences import user_label_create

SECRET_SUBJECT = "Secret-subject-of-alice"
SECRET_LABEL = "Secret-label-of-alice"
SECRET_DRAFT = "Secret-draft-of-alice"
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@dataclass
class World:
    """The owner's mailbox with one thread and one user label; the visitors."""

    owner: Any
    thread_id: int
    label_id: int
    inbox_id: int
    message_id: int = 0
    attachment_id: int = 0
    content_id: str = ""
    draft_id: int = 0

    def owner_thread_in_inbox(self) -> bool:
        return ThreadLabel.objects.filter(thread_id=self.thread_id, label_id=self.inbox_id).exists()

    def owner_thread_unmoved(self) -> bool:
        """Still in the Inbox, and not given the owner's label."""
        on = set(ThreadLabel.objects.filter(thread_id=self.thread_id).values_list("label_id", flat=True))
        return self.inbox_id in on and self.label_id not in on

    def owner_draft_unchanged(self) -> bool:
        return Draft.objects.get(pk=self.draft_id).subject == SECRET_DRAFT


@dataclass(frozen=True)
class Access:
    kind: str
    method: str = "GET"
    kwargs: Callable[[World], dict] = lambda w: {}
    query: Callable[[World], dict] = lambda w: {}
    data: Callable[[World], dict] = lambda w: {}
    # For a POST another user may make with the owner's ids: the owner's data must be unchanged.
    unchanged: Callable[[World], bool] = lambda w: True
    # An ``own`` request that names the owner's objects in its body or query: another user (and
    # staff) may be refused with 404 rather than served their own mailbox.
    refusable: bool = False
    reason: str = ""
    extra: dict = field(default_factory=dict)


COVERAGE: dict[str, Access] = {
    # --- ui-lists -----------------------------------------------------------------------------
    "inbox": Access("own"),
    "starred": Access("own"),
    "all_mail": Access("own"),
    "label": Access("owned", kwargs=lambda w: {"label_id": w.label_id}),
    # Move names a label to add and the list to take the thread out of: both the owner's.
    "threads_action": Access(
        "own",
        method="POST",
        data=lambda w: {
            "action": "move",
            "thread": [w.thread_id],
            "label": w.label_id,
            "current": str(w.inbox_id),
            "next": "/",
        },
        unchanged=World.owner_thread_unmoved,
        refusable=True,
    ),
    "undo": Access("own", method="POST", data=lambda w: {"next": "/"}),
    # The owner's thread named in the POST: another user (and staff) get 404, not an empty merge;
    # the owner is told to select two or more (302 back).
    "threads_merge": Access("owned", method="POST", data=lambda w: {"thread": [w.thread_id], "next": "/"}),
    "thread_row": Access("owned", kwargs=lambda w: {"thread_id": w.thread_id}, query=lambda w: {"label": w.inbox_id}),
    "events_since": Access("own", query=lambda w: {"after": "1:1:"}),  # a snapshot before everything
    "labels": Access("own"),
    "labels_sidebar": Access("own", query=lambda w: {"current": str(w.label_id)}),
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
    # --- ui-conversation ------------------------------------------------------------------------
    "thread_detail": Access("owned", kwargs=lambda w: {"thread_id": w.thread_id}),
    "thread_mark_read": Access(
        "owned", method="POST", kwargs=lambda w: {"thread_id": w.thread_id}, data=lambda w: {"message": [w.message_id]}
    ),
    "message_body": Access("owned", kwargs=lambda w: {"message_id": w.message_id}),
    "attachment": Access("owned", kwargs=lambda w: {"message_id": w.message_id, "attachment_id": w.attachment_id}),
    "inline_image": Access("owned", kwargs=lambda w: {"message_id": w.message_id, "content_id": w.content_id}),
    "remote_images_always": Access("owned", method="POST", kwargs=lambda w: {"message_id": w.message_id}),
    # The owner's only message: refused with a message (302 back) for the owner, 404 for the others.
    "message_split": Access("owned", method="POST", kwargs=lambda w: {"message_id": w.message_id}),
    "image_proxy": Access(
        "signed",
        reason="body frames are sandboxed without same-origin, so Chrome sends no session cookie: the "
        "proxied image URL carries a signed, expiring token for one mailbox instead",
    ),
    # --- compose --------------------------------------------------------------------------------
    "compose": Access("own"),
    "drafts": Access("own"),
    "draft": Access("owned", kwargs=lambda w: {"draft_id": w.draft_id}),
    "draft_autosave": Access(
        "own",
        method="POST",
        data=lambda w: {
            "draft": w.draft_id,
            "version": Draft.objects.get(pk=w.draft_id).version,
            "subject": "Overwritten",
            "body": "text",
            "body_format": "plain",
        },
        unchanged=World.owner_draft_unchanged,
        refusable=True,
    ),
    "draft_attachment_upload": Access(
        "owned",
        method="POST",
        kwargs=lambda w: {"draft_id": w.draft_id},
        data=lambda w: {"file": SimpleUploadedFile("notes.txt", b"some notes", content_type="text/plain")},
    ),
    "contacts_autocomplete": Access("own", query=lambda w: {"q": "car"}),
    # --- sending --------------------------------------------------------------------------------
    "scheduled": Access("own"),
    "delivery_timeline": Access("owned", kwargs=lambda w: {"message_id": w.message_id}),
    "message_send_undo": Access("owned", method="POST", kwargs=lambda w: {"message_id": w.message_id}),
    # --- inbound counters -----------------------------------------------------------------------
    "metrics": Access(
        "token",
        reason="Prometheus scrapes with a bearer token (MAILSITE_METRICS_TOKEN), not a session; staff may look",
    ),
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
    delivered = message_import_raw(mailbox=owner, raw=_secret_message(), source_tag="t")
    message = delivered.message
    label = user_label_create(mailbox=owner, name=SECRET_LABEL)
    inbox = Label.objects.get(mailbox=owner, role=Label.Role.INBOX)
    download = Attachment.objects.get(mailbox=owner, message=message, is_inline=False)
    inline = Attachment.objects.get(mailbox=owner, message=message, is_inline=True)
    return World(
        owner=owner,
        thread_id=message.thread_id,
        label_id=label.id,
        inbox_id=inbox.id,
        message_id=message.id,
        attachment_id=download.id,
        content_id=inline.content_id,
        draft_id=draft_create(mailbox=owner, fields=DraftFields(subject=SECRET_DRAFT)).id,
    )


def _secret_message() -> bytes:
    """The owner's message: HTML with an inline cid: image, and a PDF attachment."""
    msg = EmailMessage()
    msg["From"] = "Carol <carol@example.org>"
    msg["To"] = "alice@example.test"
    msg["Subject"] = SECRET_SUBJECT
    msg["Message-ID"] = "<secret@x>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    msg.set_content("Plain part")
    msg.add_alternative('<p>HTML part <img src="cid:logo@x"></p>', subtype="html")
    msg.get_payload()[1].add_related(PNG_1PX, maintype="image", subtype="png", cid="<logo@x>")
    msg.add_attachment(b"%PDF-1.4 secret", maintype="application", subtype="pdf", filename="secret.pdf")
    return bytes(msg)


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
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    body = raw.decode(errors="replace")
    assert response.status_code < 500, body[:500]
    if access.kind == "public":
        assert response.status_code in (200, 302)
    elif access.kind == "token":
        assert response.status_code == {"anonymous": 401, "staff": 200}.get(role, 403)
    elif role == "anonymous":
        assert _sent_to_login(response), (response.status_code, response.get("Location"))
    elif role == "owner" and access.kind != "signed":
        assert response.status_code in (200, 204, 302), response.status_code
    elif access.kind == "signed":
        assert 400 <= response.status_code < 500, response.status_code
    elif access.kind == "owned":
        assert response.status_code == 404
    else:
        assert response.status_code in ((200, 302, 404) if access.refusable else (200, 302))
        assert SECRET_SUBJECT not in body
        assert SECRET_LABEL not in body
        assert SECRET_DRAFT not in body
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


# --- Websocket routes (mailsite/routing.py) -------------------------------------------------
# ``WEBSOCKET_COVERAGE`` says, per websocket route, what each visitor must get; a route added to
# the Channels routing without a row here fails ``test_every_websocket_route_is_covered``.
# Kinds:
# - ``mailbox``: joins the visitor's own mailbox group. Owner: accepted and sent the owner's
#   events; another user and staff: accepted, but never sent the owner's events; anonymous:
#   refused with 4401; the owner's own session from a foreign Origin: refused.

WEBSOCKET_COVERAGE: dict[str, Access] = {
    "ws/mailbox/": Access("mailbox", reason="a tab's live updates: its own mailbox's group only"),
}
WEBSOCKET_ROLES = ("owner", "other", "staff", "anonymous", "foreign-origin")
OWN_ORIGIN = b"http://testserver"
# Connecting looks the user up in the database and joins a group: slow on a busy machine.
CONNECT_TIMEOUT = 10
EVENT_DEADLINE = 30
LIVE_MAIL = b"From: c@example.org\r\nTo: alice@example.test\r\nSubject: live\r\nMessage-ID: <ws@x>\r\n\r\nhi\r\n"


def _websocket_routes(patterns: list, prefix: str = ""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        inner = getattr(entry.callback, "routes", None)  # a nested URLRouter
        if inner is not None:
            yield from _websocket_routes(inner, route)
        else:
            yield route


def _all_websocket_routes() -> list[str]:
    from mailsite.routing import websocket_urlpatterns

    return sorted(_websocket_routes(websocket_urlpatterns))


def test_every_websocket_route_is_covered():
    routes = _all_websocket_routes()
    assert routes, "no websocket routes found"
    assert [r for r in routes if r not in WEBSOCKET_COVERAGE] == [], "add a row to WEBSOCKET_COVERAGE for each"
    assert set(WEBSOCKET_COVERAGE) - set(routes) == set(), "WEBSOCKET_COVERAGE rows for routes that no longer exist"


def _session_cookie(role: str, world: World) -> bytes:
    """The Cookie header of a browser logged in as ``role`` (none for anonymous visitors)."""
    if role == "anonymous":
        return b""
    client = _visitor("owner" if role == "foreign-origin" else role, world)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


WEBSOCKET_CASES = [(route, role) for route in _all_websocket_routes() for role in WEBSOCKET_ROLES]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("route", "role"), WEBSOCKET_CASES, ids=[f"{r}-{v}" for r, v in WEBSOCKET_CASES])
async def test_each_websocket_visitor_gets_what_the_table_says(world, route, role, settings):
    """Through the project's whole websocket stack (Origin check, session, routing), as a browser."""
    from mailsite.asgi import build_application

    assert WEBSOCKET_COVERAGE[route].kind == "mailbox"
    settings.ALLOWED_HOSTS = ["testserver"]
    origin = b"https://evil.example" if role == "foreign-origin" else OWN_ORIGIN
    headers = [(b"origin", origin)]
    cookie = await database_sync_to_async(_session_cookie)(role, world)
    if cookie:
        headers.append((b"cookie", cookie))
    socket = WebsocketCommunicator(build_application(), f"/{route}", headers=headers)
    try:
        connected, code = await socket.connect(timeout=CONNECT_TIMEOUT)
        if role in ("anonymous", "foreign-origin"):
            assert not connected
            assert code == (4401 if role == "anonymous" else 1000)
            return
        assert connected
        await database_sync_to_async(message_import_raw)(mailbox=world.owner, raw=LIVE_MAIL, source_tag="t")
        if role == "owner":
            event = await socket.receive_json_from(timeout=EVENT_DEADLINE)
            assert event["type"] == "thread.updated"
        else:
            assert await socket.receive_nothing(timeout=1)
    finally:
        await socket.disconnect()
        await database_sync_to_async(connections.close_all)()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["other", "staff"])
def test_the_owners_ids_beside_the_visitors_own_objects_reach_nothing(world, role):
    """A visitor naming their own thread or draft together with the owner's label, list or draft
    ids: refused (404) or answered from their own mailbox, the owner's data unchanged."""
    client = _visitor(role, world)
    visitor = client.get(reverse("inbox")).context["mailbox"]
    theirs = message_import_raw(mailbox=visitor, raw=LIVE_MAIL, source_tag="t").message.thread_id
    owner_label_rows = ThreadLabel.objects.filter(label_id=world.label_id).count()

    moved = client.post(
        reverse("threads_action"),
        {"action": "move", "thread": [theirs], "label": world.label_id, "current": str(world.inbox_id), "next": "/"},
    )
    row = client.get(reverse("thread_row", args=[theirs]), {"label": world.label_id})
    sidebar = client.get(reverse("labels_sidebar"), {"current": str(world.label_id)})
    saved = client.post(
        reverse("draft_autosave"),
        {"draft": world.draft_id, "subject": "Overwritten", "body": "x", "body_format": "plain"},
    )

    assert moved.status_code == 404
    assert row.status_code == 404
    assert sidebar.status_code == 200
    assert SECRET_LABEL not in sidebar.content.decode()
    assert 'aria-current="page"' not in sidebar.content.decode()
    assert saved.status_code == 404
    assert ThreadLabel.objects.filter(label_id=world.label_id).count() == owner_label_rows
    assert world.owner_thread_unmoved()
    assert world.owner_draft_unchanged()
