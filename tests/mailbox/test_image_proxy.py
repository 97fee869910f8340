"""The image proxy against a real HTTP server on loopback.

Loopback is refused like every non-public address; tests that need the server reach it through
the test-only setting ``MAILSITE_IMAGE_PROXY_TEST_ALLOWED_NETWORKS``.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from mailbox.services.images import ImageFetchError, image_fetch, proxy_token
from tests.mailbox.conversation_mail import PNG


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_GET(self) -> None:
        _Handler.seen.append({"path": self.path, "headers": dict(self.headers)})
        route = urlsplit(self.path).path
        if route == "/pixel.png":
            self._send(200, "image/png", PNG)
        elif route == "/page.html":
            self._send(200, "text/html", b"<script>alert(1)</script>")
        elif route == "/image.svg":
            self._send(200, "image/svg+xml", b"<svg/>")
        elif route == "/huge.png":
            self._send(200, "image/png", b"\0" * 300_000)
        elif route == "/redirect-private":
            self.send_response(302)
            self.send_header("Location", "http://10.0.0.1/pixel.png")
            self.end_headers()
        elif route == "/redirect-ok":
            self.send_response(302)
            self.send_header("Location", "/pixel.png")
            self.end_headers()
        else:
            self._send(404, "text/plain", b"no")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def image_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_allowed(settings):
    settings.MAILSITE_IMAGE_PROXY_TEST_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.MAILSITE_IMAGE_PROXY_MAX_BYTES = 200_000


def test_loopback_is_refused_without_the_test_override(image_server):
    with pytest.raises(ImageFetchError, match="not on the public internet"):
        image_fetch(url=f"{image_server}/pixel.png")
    assert _Handler.seen == []  # refused before connecting


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/a.png",
        "http://192.168.1.1/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/a.png",
        "http://[::ffff:127.0.0.1]/a.png",
        "http://0.0.0.0/a.png",
        "http://localhost/a.png",
        "http://100.64.0.1/a.png",
        "file:///etc/passwd",
        "ftp://example.org/a.png",
    ],
)
def test_non_public_addresses_and_other_schemes_are_refused(url):
    with pytest.raises(ImageFetchError):
        image_fetch(url=url)


def test_localhost_name_is_refused(image_server):
    port = image_server.rsplit(":", 1)[1]
    with pytest.raises(ImageFetchError):
        image_fetch(url=f"http://localhost:{port}/pixel.png")
    assert _Handler.seen == []


def test_fetches_an_image_without_telling_the_reader(image_server, loopback_allowed):
    image = image_fetch(url=f"{image_server}/pixel.png?u=1")
    assert image.content_type == "image/png"
    assert image.data == PNG
    headers = _Handler.seen[0]["headers"]
    assert "Cookie" not in headers
    assert "Referer" not in headers
    assert headers["User-Agent"] == "Mailsite image proxy"


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/page.html", "not an image"), ("/image.svg", "not an image"), ("/huge.png", "too large"), ("/nope", "404")],
)
def test_refuses_what_is_not_a_small_raster_image(image_server, loopback_allowed, path, reason):
    with pytest.raises(ImageFetchError, match=reason):
        image_fetch(url=f"{image_server}{path}")


def test_redirects_are_checked_at_every_hop(image_server, loopback_allowed):
    assert image_fetch(url=f"{image_server}/redirect-ok").data == PNG
    with pytest.raises(ImageFetchError, match="not on the public internet"):
        image_fetch(url=f"{image_server}/redirect-private")


@pytest.mark.django_db
def test_proxy_route_serves_only_signed_urls(client, mailbox, image_server, loopback_allowed):
    client.force_login(mailbox.user)
    url = f"{image_server}/pixel.png"

    good = client.get(reverse("image_proxy"), {"u": proxy_token(url)})
    forged = client.get(reverse("image_proxy"), {"u": "x" + proxy_token(url)})
    not_image = client.get(reverse("image_proxy"), {"u": proxy_token(f"{image_server}/page.html")})

    assert good.status_code == 200
    assert good.content == PNG
    assert good["Content-Type"] == "image/png"
    assert good["X-Content-Type-Options"] == "nosniff"
    assert forged.status_code == 400
    assert not_image.status_code == 502
    assert b"script" not in not_image.content
    client.logout()
    assert client.get(reverse("image_proxy"), {"u": "forged"}).status_code == 302
    # The body document's requests carry no session; the signature alone lets them through.
    assert client.get(reverse("image_proxy"), {"u": proxy_token(url)}).status_code == 200


def test_token_round_trip_hides_the_url():
    token = proxy_token("https://tracker.example.net/p.gif?id=42")
    assert "tracker" not in token
    assert parse_qs(f"u={token}")["u"][0] == token
