"""Our own URLs inside a rendered body: signed ``cid:`` image routes and proxied remote images.

The body document is sandboxed without ``allow-same-origin``: its image requests come from an
opaque origin, and the browser leaves our SameSite session cookie off them. So each URL carries
its own short-lived signature, minted only while rendering for the owner, that the route accepts
in place of a session.
"""

from urllib.parse import quote, urlencode

from django.core import signing
from django.urls import reverse

from mailbox.rendering.html import UrlPolicy
from mailbox.services.images import proxy_token

CAPABILITY_SALT = "mailbox.body_capability"
CAPABILITY_MAX_AGE = 24 * 3600


def _signature(value: str) -> str:
    signed = signing.TimestampSigner(salt=CAPABILITY_SALT).sign(value)
    return signed[len(value) + 1 :]


def _signature_valid(value: str, signature: str) -> bool:
    try:
        signing.TimestampSigner(salt=CAPABILITY_SALT).unsign(f"{value}:{signature}", max_age=CAPABILITY_MAX_AGE)
    except signing.BadSignature:
        return False
    return True


def inline_image_signature(*, mailbox_id: int, message_id: int, content_id: str) -> str:
    return _signature(f"cid/{mailbox_id}/{message_id}/{content_id}")


def inline_image_signature_valid(*, mailbox_id: int, message_id: int, content_id: str, signature: str) -> bool:
    return _signature_valid(f"cid/{mailbox_id}/{message_id}/{content_id}", signature)


def body_signature(*, mailbox_id: int, message_id: int) -> str:
    """For the body document's own "show images" link: the frame reloads itself without our
    cookies, like its image requests."""
    return _signature(f"body/{mailbox_id}/{message_id}")


def body_signature_valid(*, mailbox_id: int, message_id: int, signature: str) -> bool:
    return _signature_valid(f"body/{mailbox_id}/{message_id}", signature)


def message_url_policy(*, mailbox_id: int, message_id: int, content_ids: set[str], show_remote: bool) -> UrlPolicy:
    """The URL policy for one message's body: its inline parts through our signed route, remote
    images through the proxy when ``show_remote``, else blocked."""
    cid_prefix = reverse("inline_image", args=[message_id, "x"]).removesuffix("x/")
    proxy_prefix = reverse("image_proxy") + "?"

    def cid_url(content_id: str) -> str | None:
        if content_id not in content_ids or "/" in content_id:
            return None
        signature = inline_image_signature(mailbox_id=mailbox_id, message_id=message_id, content_id=content_id)
        return f"{cid_prefix}{quote(content_id, safe='@.-_+')}/?{urlencode({'s': signature})}"

    def proxy_url(url: str) -> str:
        return proxy_prefix + urlencode({"u": proxy_token(url)})

    return UrlPolicy(
        cid_url=cid_url, proxy_url=proxy_url if show_remote else None, own_prefixes=(cid_prefix, proxy_prefix)
    )
