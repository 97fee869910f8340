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

INLINE_SALT = "mailbox.inline_image"
INLINE_MAX_AGE = 24 * 3600


def inline_image_signature(*, mailbox_id: int, message_id: int, content_id: str) -> str:
    signed = signing.TimestampSigner(salt=INLINE_SALT).sign(f"{mailbox_id}/{message_id}/{content_id}")
    return signed.rsplit(":", 2)[-2] + ":" + signed.rsplit(":", 1)[-1]


def inline_image_signature_valid(*, mailbox_id: int, message_id: int, content_id: str, signature: str) -> bool:
    value = f"{mailbox_id}/{message_id}/{content_id}"
    try:
        signing.TimestampSigner(salt=INLINE_SALT).unsign(f"{value}:{signature}", max_age=INLINE_MAX_AGE)
    except signing.BadSignature:
        return False
    return True


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
