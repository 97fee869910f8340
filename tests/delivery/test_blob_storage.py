"""Raw blobs on the filesystem (delivery.storage): a final name only ever holds all of its bytes.

Failures are real: a write cut short by the kernel (RLIMIT_FSIZE makes write() fail with EFBIG part
way, as a full disk fails with ENOSPC), a truncated file left at the final name, concurrent writers
of the same bytes in threads, a blob damaged on disk before its receipt is parsed.
"""

import hashlib
import os
import resource
import threading
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from delivery.models import Blob, InboundReceipt
from delivery.selectors import blob_read
from delivery.services import (
    blob_storage_key,
    blob_store,
    blobs_store,
    inbound_receipt_create,
    inbound_receipt_reset,
)
from delivery.storage import TEMPORARY_PREFIX, BlobIntegrityError
from mailbox.models import Message
from mailbox.tasks import receipt_process_task

RAW = (
    b"From: Carol <carol@example.org>\r\nTo: alice@example.test\r\nSubject: Whole\r\n"
    b"Message-ID: <whole@example.org>\r\n\r\n" + b"A line of body text that must arrive whole.\r\n" * 40_000
)  # ~1.8 MB


def _mail_root() -> Path:
    return Path(storages["mail"].location)


def _final_path(data: bytes) -> Path:
    return _mail_root() / blob_storage_key(hashlib.sha256(data).hexdigest())


def _files_under_mail_root() -> list[Path]:
    return sorted(p for p in _mail_root().rglob("*") if p.is_file())


@contextmanager
def _file_size_limit(limit: int):
    """Writes past ``limit`` bytes fail with EFBIG (Python ignores SIGXFSZ), as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.django_db
def test_a_write_cut_short_leaves_no_final_file_and_the_retry_stores_every_byte():
    with _file_size_limit(len(RAW) // 3), pytest.raises(OSError, match="too large"):  # EFBIG, part way
        blob_store(data=RAW)

    assert not _final_path(RAW).exists()
    assert _files_under_mail_root() == []  # the partial temporary file is gone too
    assert not Blob.objects.exists()

    blob = blob_store(data=RAW)  # the ESP's retry

    assert _final_path(RAW).read_bytes() == RAW
    assert blob_read(blob=blob) == RAW


@pytest.mark.django_db
def test_a_batch_write_cut_short_leaves_no_final_file():
    with _file_size_limit(len(RAW) // 3), pytest.raises(OSError, match="too large"):
        blobs_store(datas=[b"Subject: small\r\n\r\nfits\r\n", RAW])

    assert not _final_path(RAW).exists()
    assert _files_under_mail_root() == []  # the batch is written whole or not at all
    blobs = blobs_store(datas=[RAW])
    assert blob_read(blob=blobs[hashlib.sha256(RAW).hexdigest()]) == RAW


@pytest.mark.django_db
@pytest.mark.parametrize(
    "damaged",
    [
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(lambda raw: b"", id="empty"),
        pytest.param(lambda raw: raw[:-1] + b"X", id="same-size-other-bytes"),
    ],
)
def test_a_damaged_final_file_left_by_an_earlier_write_is_replaced_whole(damaged):
    final = _final_path(RAW)
    final.parent.mkdir(parents=True)
    final.write_bytes(damaged(RAW))  # e.g. Django's storage died mid-write before this fix

    blob = blob_store(data=RAW)

    assert final.read_bytes() == RAW
    assert blob_read(blob=blob) == RAW
    assert [p.name for p in _files_under_mail_root()] == [final.name]


@pytest.mark.django_db
def test_a_batch_stores_every_blob_whole():
    datas = [RAW + str(n).encode() for n in range(20)]

    blobs = blobs_store(datas=datas)

    for data in datas:
        assert blob_read(blob=blobs[hashlib.sha256(data).hexdigest()]) == data
    assert not any(p.name.startswith(TEMPORARY_PREFIX) for p in _files_under_mail_root())


@pytest.mark.django_db
def test_a_complete_final_file_is_kept_not_rewritten():
    final = _final_path(RAW)
    final.parent.mkdir(parents=True)
    final.write_bytes(RAW)
    inode = final.stat().st_ino

    blob_store(data=RAW)

    assert final.stat().st_ino == inode


def test_concurrent_saves_of_the_same_bytes_never_show_a_partial_file(settings):
    """Eight writers of one key while a reader watches the final name: whenever it exists, it
    holds every byte (with writes straight into the final file, a reader sees partial files and a
    second writer truncates the first one's)."""
    storage = storages["mail"]
    data = RAW * 4  # ~7 MB: each write takes long enough to overlap the others
    key = blob_storage_key(hashlib.sha256(data).hexdigest())
    final = _mail_root() / key
    seen_sizes: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            with suppress(FileNotFoundError):
                seen_sizes.add(len(final.read_bytes()))

    def save() -> None:
        storage.save(key, ContentFile(data))

    watcher = threading.Thread(target=watch)
    writers = [threading.Thread(target=save) for _ in range(8)]
    watcher.start()
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    done.set()
    watcher.join()

    assert final.read_bytes() == data
    assert seen_sizes <= {len(data)}
    assert [p.name for p in _files_under_mail_root()] == [final.name]


def test_exists_verifies_a_content_address_only(settings):
    storage = storages["mail"]
    key = blob_storage_key(hashlib.sha256(RAW).hexdigest())
    (_mail_root() / key).parent.mkdir(parents=True)
    (_mail_root() / key).write_bytes(RAW[:100])
    (_mail_root() / "notes.txt").write_bytes(b"any bytes")

    assert storage.exists(key) is False  # present, but not the bytes its name promises
    assert storage.exists("notes.txt") is True  # not a content address: plain existence
    assert storage.exists(blob_storage_key("0" * 64)) is False


def test_saved_files_are_readable_as_djangos_storage_makes_them(settings):
    storage = storages["mail"]
    key = blob_storage_key(hashlib.sha256(RAW).hexdigest())
    storage.save(key, ContentFile(RAW))

    umask = os.umask(0o022)
    os.umask(umask)
    assert (_mail_root() / key).stat().st_mode & 0o777 == 0o666 & ~umask
    assert not any(p.name.startswith(TEMPORARY_PREFIX) for p in _files_under_mail_root())


@pytest.mark.django_db
def test_reading_damaged_bytes_raises_instead_of_returning_them():
    blob = blob_store(data=RAW)
    _final_path(RAW).write_bytes(RAW[:1000])

    with pytest.raises(BlobIntegrityError, match=f"blob {blob.sha256}.*1000 bytes"):
        blob_read(blob=blob)


@pytest.mark.django_db
def test_a_receipt_whose_blob_is_damaged_fails_visibly_instead_of_parsing_garbage(mailbox):
    """The parse task does not deliver a truncated message: the receipt is marked failed with
    the reason, for staff to reprocess once the bytes are restored."""
    stored = inbound_receipt_create(source=InboundReceipt.Source.IMPORT, raw=RAW, envelope_recipients=[mailbox.address])
    _final_path(RAW).write_bytes(RAW[: len(RAW) // 2])

    receipt_process_task.delay(stored.receipt.id)

    receipt = InboundReceipt.objects.get()
    assert receipt.status == InboundReceipt.Status.FAILED
    assert "BlobIntegrityError" in receipt.last_error
    assert "restore the raw bytes" in receipt.last_error
    assert not Message.objects.exists()

    _final_path(RAW).write_bytes(RAW)  # restored
    inbound_receipt_reset(receipt_id=receipt.id)
    receipt_process_task.delay(receipt.id)
    assert InboundReceipt.objects.get().status == InboundReceipt.Status.PARSED
    assert Message.objects.filter(mailbox=mailbox).count() == 1
