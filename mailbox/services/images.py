"""Remote images: the per-sender "always show" list and the image proxy's fetcher.

The proxy fetches a remote image for the reader, so the sender never sees the reader's address.
It must not become a way into our own network: the host is resolved once, every address it
resolves to must be a public one, and the connection goes to the address that was checked (no
second lookup a rebinding DNS server could answer differently). Redirects are followed by hand,
each hop checked the same way. Only raster image types are accepted, within a size and time limit.
"""

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction

from mailbox.models import Mailbox, Message, RemoteImageSender

PROXY_SALT = "mailbox.image_proxy"
PROXIED_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"})
MAX_REDIRECTS = 3
USER_AGENT = "Mailsite image proxy"


class ImageFetchError(Exception):
    """The image cannot be fetched; the message says why, for the log and the response."""


@dataclass(frozen=True)
class FetchedImage:
    content_type: str
    data: bytes


@transaction.atomic
def remote_images_always_for_sender(*, mailbox: Mailbox, address: str) -> RemoteImageSender:
    """Always show remote images from ``address`` in ``mailbox``. Idempotent."""
    address = address.strip().lower()
    existing = RemoteImageSender.objects.filter(mailbox=mailbox, address=address).first()
    if existing is not None:
        return existing
    row = RemoteImageSender(mailbox=mailbox, address=address)
    row.full_clean()
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # a concurrent request added it
        return RemoteImageSender.objects.get(mailbox=mailbox, address=address)
    return row


def message_remote_content_record(*, message: Message, blocked: bool) -> None:
    """Remember whether the sanitiser, rendering ``message``'s body with remote images off, blocked
    anything: the conversation page offers "Show remote images" only then. Writes only when that
    changes (the first render), so reading a body again costs no write."""
    if message.remote_content is blocked:
        return
    Message.objects.filter(mailbox_id=message.mailbox_id, pk=message.pk).update(remote_content=blocked)
    message.remote_content = blocked


def message_body_lines_record(*, message: Message, lines: int) -> None:
    """Remember how tall ``message``'s rendered body is (``Message.body_lines``) for mail delivered
    before delivery measured it. Writes only while it is unknown, so reading a body again costs no write."""
    if message.body_lines is not None:
        return
    Message.objects.filter(mailbox_id=message.mailbox_id, pk=message.pk).update(body_lines=lines)
    message.body_lines = lines


def proxy_token(url: str) -> str:
    """A signed token carrying ``url`` for the proxy route; only our pages can mint one."""
    return signing.dumps(url, salt=PROXY_SALT, compress=True)


def proxy_token_url(token: str) -> str:
    """The URL inside a token; raises ``signing.BadSignature`` (or its subclass for expiry)."""
    return signing.loads(token, salt=PROXY_SALT, max_age=settings.MAILSITE_IMAGE_PROXY_TOKEN_MAX_AGE)


def image_fetch(*, url: str) -> FetchedImage:
    """Fetch a remote image by the rules in the module docstring; raises ``ImageFetchError``."""
    deadline = time.monotonic() + settings.MAILSITE_IMAGE_PROXY_TIMEOUT
    for _hop in range(MAX_REDIRECTS + 1):
        response = _request(url, deadline)
        try:
            if response.status in {301, 302, 303, 307, 308} and response.headers.get("location"):
                url = urljoin(url, response.headers["location"])
                continue
            return _image_read(response, deadline)
        finally:
            response.release_conn()
    raise ImageFetchError("too many redirects")


def _request(url: str, deadline: float) -> urllib3.BaseHTTPResponse:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ImageFetchError("not an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ImageFetchError("bad port") from exc
    address = _public_address(parts.hostname, port)
    remaining = max(deadline - time.monotonic(), 0.1)
    timeout = urllib3.Timeout(connect=min(remaining, 5.0), read=remaining)
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    headers = {"Host": host, "User-Agent": USER_AGENT, "Accept": "image/*"}
    try:
        return pool.urlopen("GET", target, headers=headers, redirect=False, preload_content=False, release_conn=False)
    except urllib3.exceptions.HTTPError as exc:
        raise ImageFetchError(f"cannot fetch: {exc.__class__.__name__}") from exc


def _public_address(hostname: str, port: int) -> str:
    """Resolve ``hostname`` and return an address to connect to; refuse if any is not public."""
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ImageFetchError("host does not resolve") from exc
    addresses = [info[4][0] for info in infos]
    if not addresses or not all(_is_allowed(address) for address in addresses):
        raise ImageFetchError("host is not on the public internet")
    return addresses[0]


def _is_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # Tests alone set this (never the environment), to reach a server of their own on loopback.
    allowed_for_tests = getattr(settings, "MAILSITE_IMAGE_PROXY_TEST_ALLOWED_NETWORKS", ())
    if any(ip in ipaddress.ip_network(net) for net in allowed_for_tests):
        return True
    return ip.is_global and not ip.is_multicast


def _image_read(response: urllib3.BaseHTTPResponse, deadline: float) -> FetchedImage:
    if response.status != 200:
        raise ImageFetchError(f"remote answered {response.status}")
    content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in PROXIED_TYPES:
        raise ImageFetchError("not an image type we show")
    limit = settings.MAILSITE_IMAGE_PROXY_MAX_BYTES
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ImageFetchError("image too large")
    chunks, size = [], 0
    try:
        for chunk in response.stream(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise ImageFetchError("image too large")
            if time.monotonic() > deadline:
                raise ImageFetchError("too slow")
            chunks.append(chunk)
    except urllib3.exceptions.HTTPError as exc:
        raise ImageFetchError(f"cannot read: {exc.__class__.__name__}") from exc
    return FetchedImage(content_type=content_type, data=b"".join(chunks))
