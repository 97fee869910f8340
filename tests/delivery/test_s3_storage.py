"""Raw mail in S3: the storage the settings build from MAIL_STORAGE_BUCKET and AWS_S3_ENDPOINT_URL,
against moto's standalone S3 server (a real S3 API over HTTP, not patched boto)."""

import base64
import hashlib
import runpy
import uuid

import pytest

from delivery.selectors import blob_read
from delivery.services import blob_storage_key, blob_store
from tests.conftest import REPO_ROOT
from tests.s3 import CREDENTIALS, REGION, moto_server, s3_client

# Bytes as they came off the wire: CRLF, 8-bit Latin-1, a NUL and a trailing space.
RAW = (
    b"From: Carol <carol@example.org>\r\nTo: alice@example.test\r\nSubject: S3\r\n"
    b"Message-ID: <s3@example.org>\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9 \x00 cr\xe8me \r\n"
)


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def s3_mail_storage(settings, monkeypatch, tmp_path, s3_endpoint) -> str:
    """Mail storage as mailsite/settings.py configures it when the bucket variables are set."""
    bucket = f"mailsite-raw-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    environment = {
        "MAIL_STORAGE_BUCKET": bucket,
        "AWS_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_S3_REGION_NAME": REGION,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "MAILSITE_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": settings.SECRET_KEY,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    configured = runpy.run_path(str(REPO_ROOT / "mailsite" / "settings.py"))["STORAGES"]["mail"]
    assert configured["BACKEND"] == "storages.backends.s3.S3Storage"
    settings.STORAGES = {**settings.STORAGES, "mail": configured}
    return bucket


@pytest.mark.django_db
def test_blobs_round_trip_byte_identical_through_s3(s3_mail_storage, s3_endpoint):
    blob = blob_store(data=RAW)

    assert blob_read(blob=blob) == RAW
    stored = s3_client(s3_endpoint).get_object(Bucket=s3_mail_storage, Key=blob.storage_key)["Body"].read()
    assert stored == RAW
    assert blob.storage_key == blob_storage_key(hashlib.sha256(RAW).hexdigest())


@pytest.mark.django_db
def test_the_same_bytes_are_one_object_and_one_row(s3_mail_storage, s3_endpoint):
    first = blob_store(data=RAW)
    again = blob_store(data=RAW)

    assert again.id == first.id
    listing = s3_client(s3_endpoint).list_objects_v2(Bucket=s3_mail_storage)
    assert [item["Key"] for item in listing["Contents"]] == [first.storage_key]


@pytest.mark.django_db
def test_a_large_message_survives_multipart_upload(s3_mail_storage):
    large = RAW + bytes(range(256)) * 40_000  # ~10 MB: past boto's multipart threshold
    assert blob_read(blob=blob_store(data=large)) == large


@pytest.mark.django_db
def test_s3_checks_a_sha256_of_each_upload(s3_mail_storage, s3_endpoint):
    """S3 refuses a body that does not match the checksum the client sent with it; for a single
    PUT that checksum is the object's own sha256, the one in its key."""
    blob = blob_store(data=RAW)

    head = s3_client(s3_endpoint).head_object(Bucket=s3_mail_storage, Key=blob.storage_key, ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == blob.sha256
