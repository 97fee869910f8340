"""Opaque S/MIME (RFC 8551 3.5.2, 3.3): the MIME entity inside ``smime.p7m``, read with ``asn1crypto``.

An opaque-signed message is one ``application/pkcs7-mime`` part holding CMS signed-data whose
content is the whole message entity: only S/MIME clients show it. We read that entity (the signature
is not verified: we show the content, as clients without the signer's chain do); the raw message
keeps the signature for anyone who wants to check it. Encrypted (enveloped-data) messages cannot be
read without the recipient's private key: they are only recognised, for the view to say so.
pyca ``cryptography`` can build and decrypt PKCS #7 but gives no access to signed-data's content.
"""

from asn1crypto import cms

SMIME_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_SMIME_NAMES = (".p7m", ".p7z")


def is_smime(content_type: str, filename: str) -> bool:
    """An opaque S/MIME part, by type or (for relabelled octet-streams) by its file name."""
    return content_type in SMIME_TYPES or (
        content_type == "application/octet-stream" and filename.lower().endswith(_SMIME_NAMES)
    )


def signed_content(data: bytes) -> bytes | None:
    """The MIME entity inside CMS signed-data; ``None`` for anything else or anything broken."""
    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            return None
        content = info["content"]["encap_content_info"]["content"].native
    except Exception:  # noqa: BLE001 - asn1crypto raises on every kind of bad DER; the part stays as it came
        return None
    return content if isinstance(content, bytes) and content else None


def is_encrypted(data: bytes) -> bool:
    """CMS enveloped-data (or authenticated-enveloped): readable only with the recipient's key."""
    try:
        return cms.ContentInfo.load(data)["content_type"].native in ("enveloped_data", "authenticated_enveloped_data")
    except Exception:  # noqa: BLE001 - not CMS at all
        return False
