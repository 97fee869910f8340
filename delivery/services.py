"""Writes of the transport layer."""

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import IntegrityError, transaction

from delivery.models import Blob


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
