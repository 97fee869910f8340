"""winmail.dat (TNEF) and opaque S/MIME opened into real bodies and attachments (mailbox.parsing.containers)."""

import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from delivery.selectors import blob_read
from mailbox.models import Attachment, MessageBody
from mailbox.parsing import parse_message
from mailbox.parsing.smime import is_encrypted, signed_content
from mailbox.services import message_import_raw
from tests.conftest import SHARED_CORPORA
from tests.mailbox.container_mail import (
    SIGNED_ENTITY,
    enveloped,
    opaque_signed,
    outlook_message,
    signer,
    smime_message,
    tnef_stream,
)

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
XLSX = b"PK\x03\x04" + bytes(range(256)) * 4
REPORT_FILES = [("QUARTE~1.PDF", "Quarterly report.pdf", PDF), ("FIGURE~1.XLS", "Figures 2026.xlsx", XLSX)]


def test_winmail_dat_is_replaced_by_the_files_outlook_put_in_it():
    parsed = parse_message(outlook_message(tnef_stream(body="Rich words", files=REPORT_FILES)), received_at=NOW)

    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("Quarterly report.pdf", "application/pdf", PDF),
        (
            "Figures 2026.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            XLSX,
        ),
    ]
    # The message's own text part stays its body: the TNEF's copy of it is not shown twice.
    assert parsed.text.strip() == "See the attached report."
    assert parsed.repairs == []


def test_winmail_dat_gives_the_body_when_the_message_has_none_of_its_own():
    tnef = tnef_stream(body="Plain copy", html="<p>Caf\xe9 <b>bold</b></p>", files=REPORT_FILES[:1])
    parsed = parse_message(outlook_message(tnef, text=None), received_at=NOW)

    assert parsed.text == "Plain copy"
    assert parsed.html == "<p>Caf\xe9 <b>bold</b></p>"
    assert parsed.snippet == "Plain copy"
    assert [a.filename for a in parsed.attachments] == ["Quarterly report.pdf"]


def test_winmail_dat_images_shown_in_its_html_body_are_inline():
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    html = '<p>Logo: <img src="cid:image001.png@01CF8C82.F4A2A290"></p>'
    files = [("IMAGE001.PNG", "image001.png", png), *REPORT_FILES[:1]]
    tnef = tnef_stream(html=html, files=files, inline={"image001.png": "image001.png@01CF8C82.F4A2A290"})
    parsed = parse_message(outlook_message(tnef, text=None), received_at=NOW)

    assert parsed.html == html
    assert [(a.filename, a.content_type, a.content_id, a.is_inline) for a in parsed.attachments] == [
        ("image001.png", "image/png", "image001.png@01CF8C82.F4A2A290", True),
        ("Quarterly report.pdf", "application/pdf", "", False),
    ]


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(b"\x78\x9f\x3e\x22\x01\x00" + b"\x02\x10\x80\x01\x00\xff\xff\xff\x7f", id="absurd-length"),
        pytest.param(b"\x78\x9f\x3e\x22\x01\x00" + b"\x02" * 40, id="attachment-attribute-first"),
        pytest.param(b"\x78\x9f\x3e\x22", id="signature-only"),
    ],
)
def test_a_broken_winmail_dat_is_kept_and_the_message_still_parses(broken):
    parsed = parse_message(outlook_message(broken), received_at=NOW)

    assert parsed.text.strip() == "See the attached report."
    assert parsed.subject == "Quarterly report"
    # The original stays, bytes untouched, beside anything that could be salvaged from it.
    assert (parsed.attachments[0].filename, parsed.attachments[0].data) == ("winmail.dat", broken)


def test_a_truncated_winmail_dat_is_kept_beside_what_could_be_read():
    broken = tnef_stream(files=REPORT_FILES)[:-300]
    parsed = parse_message(outlook_message(broken), received_at=NOW)

    assert [a.filename for a in parsed.attachments] == ["winmail.dat", "Quarterly report.pdf", "FIGURE~1.XLS"]
    assert parsed.attachments[1].data == PDF
    assert "tnef-damaged" in parsed.repairs


def test_real_outlook_winmail_dat_with_only_an_rtf_body_is_kept():
    """SpamAssassin easy_ham/00067: Outlook's TNEF holds the body as compressed RTF only, which we
    do not convert; its text/plain part is the body, and the winmail.dat stays downloadable."""
    path = SHARED_CORPORA / "spamassassin" / "easy_ham" / "00067.23813c5ac6ce66fd892ee5501fd5dbd2"
    if not path.exists():
        pytest.skip(f"{path} is not beside this clone (CI has ../shared/corpora)")
    parsed = parse_message(path.read_bytes(), received_at=NOW)

    assert "international calls" in parsed.text
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [("", "application/ms-tnef")]


@pytest.mark.django_db
def test_winmail_dat_files_are_stored_as_blobs_of_their_own(mailbox):
    raw = outlook_message(tnef_stream(files=REPORT_FILES))
    message = message_import_raw(mailbox=mailbox, raw=raw, source_tag="test").message

    parts = list(
        Attachment.objects.filter(mailbox=mailbox, message=message).select_related("blob").order_by("position")
    )
    assert [(p.filename, p.size) for p in parts] == [
        ("Quarterly report.pdf", len(PDF)),
        ("Figures 2026.xlsx", len(XLSX)),
    ]
    assert [blob_read(blob=p.blob) for p in parts] == [PDF, XLSX]
    assert parts[0].blob_id != parts[1].blob_id
    assert message.has_attachments
    # Content-addressed: the same file in another message shares the blob.
    again = message_import_raw(mailbox=mailbox, raw=raw.replace(b"tnef-1@", b"tnef-2@"), source_tag="test").message
    assert Attachment.objects.get(message=again, position=0).blob_id == parts[0].blob_id


def test_opaque_signed_message_shows_its_signed_content():
    parsed = parse_message(smime_message(opaque_signed(SIGNED_ENTITY)), received_at=NOW)

    assert parsed.text.strip() == "The figures are final. \u2014 Sam"
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("figures.csv", "text/csv", b"quarter,total\r\nQ3,42")
    ]
    assert parsed.subject == "Signed statement"
    assert parsed.snippet.startswith("The figures are final.")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to sign")
def test_openssl_streamed_signature_is_read_too(tmp_path):
    """``openssl cms -sign -stream`` writes BER with indefinite lengths and a chunked content."""
    key, certificate = signer()
    from cryptography.hazmat.primitives import serialization

    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "entity").write_bytes(SIGNED_ENTITY)
    command = ["openssl", "cms", "-sign", "-nodetach", "-stream", "-binary", "-outform", "DER"]
    command += ["-in", tmp_path / "entity", "-signer", tmp_path / "cert.pem", "-inkey", tmp_path / "key.pem"]
    ber = subprocess.run(command, check=True, capture_output=True).stdout
    assert ber[:2] == b"\x30\x80"  # indefinite length: really the streamed form

    assert signed_content(ber) == SIGNED_ENTITY
    parsed = parse_message(smime_message(ber), received_at=NOW)
    assert [a.filename for a in parsed.attachments] == ["figures.csv"]


def test_encrypted_message_keeps_its_p7m_and_has_no_body():
    cms = enveloped(SIGNED_ENTITY)
    parsed = parse_message(smime_message(cms, smime_type="enveloped-data"), received_at=NOW)

    assert (parsed.text, parsed.html) == ("", "")
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("smime.p7m", "application/x-pkcs7-mime", cms)
    ]
    assert is_encrypted(cms)
    assert not is_encrypted(opaque_signed(SIGNED_ENTITY))
    assert signed_content(cms) is None


@pytest.mark.parametrize(
    "cms",
    [b"", b"\x30\x80\x06\x09", b"not der at all", b"\x30\x03\x02\x01\x01"],
    ids=["empty", "truncated", "text", "wrong-structure"],
)
def test_a_broken_p7m_is_kept_as_it_came(cms):
    parsed = parse_message(smime_message(cms), received_at=NOW)

    assert parsed.subject == "Signed statement"
    assert [(a.filename, a.data) for a in parsed.attachments] == [("smime.p7m", cms)]
    assert not is_encrypted(cms)


@pytest.mark.django_db
def test_signed_content_is_stored_as_the_message_body(mailbox):
    message = message_import_raw(
        mailbox=mailbox, raw=smime_message(opaque_signed(SIGNED_ENTITY)), source_tag="test"
    ).message

    assert MessageBody.objects.get(message=message).text.startswith("The figures are final.")
    assert list(Attachment.objects.filter(message=message).values_list("filename", flat=True)) == ["figures.csv"]
    assert message.snippet.startswith("The figures are final.")
