"""Builders for messages that wrap their content: Outlook's winmail.dat (TNEF) and opaque S/MIME.

The TNEF streams follow MS-OXTNEF as Outlook writes them (version, OEM code page, message class,
MAPI properties with the HTML body, then per attachment its rendering data, 8.3 title, data and
MAPI properties with the long file name). No Python library writes TNEF, and no permissively
licensed winmail.dat with attachments is in ../shared/corpora (its one real sample, SpamAssassin's
easy_ham/00067, holds only an RTF body; tests read it in place). The decoding was also checked by
hand on the 19 real Outlook samples in tnefparse's source distribution (tests/examples: files,
Unicode names, inline images, bad checksums), which are LGPL-licensed and so not copied here.

The S/MIME ones are signed for real with a throwaway certificate made here (pyca ``cryptography``),
and laid out as ``openssl smime -sign -nodetach`` lays them out.
"""

import base64
import struct
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

# TNEF attribute ids and types (MS-OXTNEF 2.1.3.1) and MAPI property tags (MS-OXPROPS).
_MESSAGE, _ATTACHMENT = 1, 2
_ATP_STRING, _ATP_TEXT, _ATP_BYTE, _ATP_WORD, _ATP_DWORD = 0x0001, 0x0002, 0x0006, 0x0007, 0x0008
_ATT_TNEF_VERSION, _ATT_OEM_CODEPAGE, _ATT_MESSAGE_CLASS = 0x9006, 0x9007, 0x8008
_ATT_BODY, _ATT_MAPI_PROPS = 0x800C, 0x9003
_ATT_RENDDATA, _ATT_TITLE, _ATT_DATA, _ATT_ATTACHMENT = 0x9002, 0x8010, 0x800F, 0x9005
_PT_BINARY, _PT_STRING8, _PT_UNICODE = 0x0102, 0x001E, 0x001F
_PR_BODY_HTML, _PR_ATTACH_LONG_FILENAME = 0x1013, 0x3707
_PR_ATTACH_MIME_TAG, _PR_ATTACH_CONTENT_ID = 0x370E, 0x3712


def _tnef_attribute(level: int, attribute: int, kind: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, attribute, kind, len(data)) + data + struct.pack("<H", checksum)


def _mapi_properties(*properties: tuple[int, int, bytes]) -> bytes:
    """Variable-length MAPI properties (binary or Unicode): one value each, padded to 4 bytes."""
    out = struct.pack("<I", len(properties))
    for kind, tag, value in properties:
        padding = b"\x00" * (-len(value) % 4)
        out += struct.pack("<HHII", kind, tag, 1, len(value)) + value + padding
    return out


def tnef_stream(
    *, body: str = "", html: str = "", files: list[tuple[str, str, bytes]] = (), inline: dict[str, str] | None = None
) -> bytes:
    """A winmail.dat: ``files`` as (8.3 title, long file name, data); ``inline`` maps a long file
    name to the Content-ID the HTML body shows it by (Outlook then records its MIME type too)."""
    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += _tnef_attribute(_MESSAGE, _ATT_TNEF_VERSION, _ATP_DWORD, struct.pack("<I", 0x00010000))
    out += _tnef_attribute(_MESSAGE, _ATT_OEM_CODEPAGE, _ATP_BYTE, struct.pack("<II", 1252, 0))
    out += _tnef_attribute(_MESSAGE, _ATT_MESSAGE_CLASS, _ATP_WORD, b"IPM.Microsoft Mail.Note\x00")
    if body:
        out += _tnef_attribute(_MESSAGE, _ATT_BODY, _ATP_TEXT, body.encode("cp1252") + b"\x00")
    if html:
        properties = _mapi_properties((_PT_BINARY, _PR_BODY_HTML, html.encode("cp1252")))
        out += _tnef_attribute(_MESSAGE, _ATT_MAPI_PROPS, _ATP_BYTE, properties)
    for title, long_name, data in files:
        out += _tnef_attribute(_ATTACHMENT, _ATT_RENDDATA, _ATP_BYTE, struct.pack("<HiiI", 1, -1, 0, 0))
        out += _tnef_attribute(_ATTACHMENT, _ATT_TITLE, _ATP_STRING, title.encode("cp1252") + b"\x00")
        out += _tnef_attribute(_ATTACHMENT, _ATT_DATA, _ATP_BYTE, data)
        properties = [(_PT_UNICODE, _PR_ATTACH_LONG_FILENAME, (long_name + "\x00").encode("utf-16-le"))]
        if inline and long_name in inline:
            properties.append((_PT_STRING8, _PR_ATTACH_CONTENT_ID, inline[long_name].encode() + b"\x00"))
            properties.append((_PT_STRING8, _PR_ATTACH_MIME_TAG, b"image/png\x00"))
        out += _tnef_attribute(_ATTACHMENT, _ATT_ATTACHMENT, _ATP_BYTE, _mapi_properties(*properties))
    return out


def _base64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def outlook_message(tnef: bytes, *, text: str | None = "See the attached report.") -> bytes:
    """Outlook's "rich text" mail as Exchange sends it outside: a text part (unless ``None``) and winmail.dat."""
    head = (
        b"From: Olga Outlook <olga@example.com>\r\nTo: alice@example.test\r\nSubject: Quarterly report\r\n"
        b"Message-ID: <tnef-1@example.com>\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    )
    text_part = b"" if text is None else b"--outer\r\nContent-Type: text/plain\r\n\r\n" + text.encode() + b"\r\n"
    return (
        head + text_part + b'--outer\r\nContent-Type: application/ms-tnef; name="winmail.dat"\r\n'
        b'Content-Disposition: attachment; filename="winmail.dat"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + _base64_lines(tnef)
        + b"\r\n--outer--\r\n"
    )


def _certificate(key: object, subject: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, subject)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def signer() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _certificate(key, "sam@example.com")


def opaque_signed(entity: bytes) -> bytes:
    """CMS signed-data holding ``entity`` (not detached), DER, signed with a fresh throwaway key."""
    key, certificate = signer()
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(entity)
        .add_signer(certificate, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def enveloped(entity: bytes) -> bytes:
    """CMS enveloped-data for a recipient whose key we then throw away."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(entity)
        .add_recipient(_certificate(key, "alice@example.test"))
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def smime_message(cms: bytes, *, smime_type: str = "signed-data", subject: str = "Signed statement") -> bytes:
    """A message whose whole body is one smime.p7m, as ``openssl smime -nodetach`` (and Outlook) send it."""
    return (
        b"From: Sam Signer <sam@example.com>\r\nTo: alice@example.test\r\nSubject: " + subject.encode() + b"\r\n"
        b"Message-ID: <smime-" + smime_type.encode() + b"@example.com>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\n"
        b'MIME-Version: 1.0\r\nContent-Disposition: attachment; filename="smime.p7m"\r\n'
        b"Content-Type: application/x-pkcs7-mime; smime-type=" + smime_type.encode() + b'; name="smime.p7m"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + _base64_lines(cms) + b"\r\n"
    )


SIGNED_ENTITY = (
    b'Content-Type: multipart/mixed; boundary="inner"\r\n\r\n'
    b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe figures are final. \xe2\x80\x94 Sam\r\n"
    b'--inner\r\nContent-Type: text/csv; name="figures.csv"\r\n'
    b'Content-Disposition: attachment; filename="figures.csv"\r\n'
    b"\r\nquarter,total\r\nQ3,42\r\n--inner--\r\n"
)
