"""Writes of the transport layer."""

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile, File
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.utils import timezone

from delivery.models import Blob, InboundReceipt


def blob_storage_key(sha256: str) -> str:
    """Content address in the mail storage; two levels of fan-out keep directories small."""
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def blob_store(*, data: bytes) -> Blob:
    """Store ``data`` once, content-addressed, and return its row (existing or new).

    The bytes are written before the row is created, so a row always points at stored bytes;
    writing the same key twice writes the same bytes. Safe to call concurrently.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    existing = Blob.objects.filter(sha256=sha256).first()
    if existing is not None:
        return existing
    key = blob_storage_key(sha256)
    storage = storages["mail"]
    if not storage.exists(key):
        saved_as = storage.save(key, ContentFile(data))
        if saved_as != key:
            raise RuntimeError(f"mail storage renamed blob {key} to {saved_as}; it must allow overwrites")
    blob = Blob(sha256=sha256, size=len(data), storage_key=key)
    # Uniqueness and the hex/size checks are constraints PostgreSQL enforces on insert.
    blob.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            blob.save()
    except IntegrityError:
        # Another writer created the row between our look-up and insert: theirs stands.
        return Blob.objects.get(sha256=sha256)
    return blob


@dataclass(frozen=True)
class ReceiptStored:
    receipt: InboundReceipt
    created: bool


@transaction.atomic
def inbound_receipt_create(
    *,
    source: str,
    raw: bytes,
    esp: str = "",
    event_id: str = "",
    envelope_sender: str = "",
    envelope_recipients: list[str] | tuple[str, ...] = (),
    verdicts: dict[str, Any] | None = None,
    correlation_id: str = "",
    metadata: dict[str, Any] | None = None,
) -> ReceiptStored:
    """Store the raw bytes and record their arrival. Parsing happens later, elsewhere.

    A repeat of an arrival the channel identifies (same source, ESP and event id) is recognised
    by the database's unique constraint: the first receipt is returned and nothing changes.
    """
    blob = blob_store(data=raw)
    receipt = InboundReceipt(
        source=source,
        esp=esp,
        event_id=event_id[:255],
        blob=blob,
        envelope_sender=envelope_sender[:998],
        envelope_recipients=[r.strip().lower()[:998] for r in envelope_recipients if r.strip()],
        verdicts=verdicts or {},
        correlation_id=correlation_id[:64],
        metadata=metadata or {},
        received_at=timezone.now(),
    )
    receipt.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            receipt.save()
    except IntegrityError:
        return ReceiptStored(InboundReceipt.objects.get(source=source, esp=esp, event_id=receipt.event_id), False)
    return ReceiptStored(receipt, created=True)


@transaction.atomic
def inbound_receipt_start_attempt(*, receipt_id: int) -> InboundReceipt | None:
    """Lock the receipt and count one more processing attempt; ``None`` if it is gone."""
    receipt = InboundReceipt.objects.select_for_update().filter(pk=receipt_id).first()
    if receipt is not None:
        receipt.attempts += 1
        receipt.save(update_fields=["attempts"])
    return receipt


def inbound_receipt_finish(*, receipt: InboundReceipt, status: str, error: str = "") -> InboundReceipt:
    """Record the outcome of processing: parsed, failed or quarantined, with the reason."""
    receipt.status = status
    receipt.last_error = error[:10_000]
    receipt.parsed_at = timezone.now() if status == InboundReceipt.Status.PARSED else None
    receipt.save(update_fields=["status", "last_error", "parsed_at"])
    return receipt


@transaction.atomic
def inbound_receipt_reset(*, receipt_id: int) -> InboundReceipt:
    """Put a failed or quarantined receipt back in line for processing (staff, after a fix)."""
    receipt = InboundReceipt.objects.select_for_update().get(pk=receipt_id)
    receipt.status = InboundReceipt.Status.RECEIVED
    receipt.save(update_fields=["status"])
    return receipt


def blob_store_file(*, file: File) -> Blob:
    """Like ``blob_store`` for an uploaded file, read in chunks: hashed in one pass, then streamed
    to storage, so a large upload is never held in memory whole."""
    digest = hashlib.sha256()
    size = 0
    for chunk in file.chunks():
        digest.update(chunk)
        size += len(chunk)
    sha256 = digest.hexdigest()
    existing = Blob.objects.filter(sha256=sha256).first()
    if existing is not None:
        return existing
    key = blob_storage_key(sha256)
    storage = storages["mail"]
    if not storage.exists(key):
        file.seek(0)
        saved_as = storage.save(key, file)
        if saved_as != key:
            raise RuntimeError(f"mail storage renamed blob {key} to {saved_as}; it must allow overwrites")
    blob = Blob(sha256=sha256, size=size, storage_key=key)
    blob.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            blob.save()
    except IntegrityError:
        return Blob.objects.get(sha256=sha256)
    return blob
