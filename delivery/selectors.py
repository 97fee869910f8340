"""Reads of the transport layer."""

from django.core.files.storage import storages

from delivery.models import Blob


def blob_read(*, blob: Blob) -> bytes:
    """The exact bytes stored for ``blob``."""
    with storages["mail"].open(blob.storage_key, "rb") as handle:
        return handle.read()
