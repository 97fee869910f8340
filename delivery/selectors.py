"""Reads of the transport layer."""

from datetime import datetime

from django.core.files import File
from django.core.files.storage import storages

from delivery.models import Blob, InboundReceipt


def blob_read(*, blob: Blob) -> bytes:
    """The exact bytes stored for ``blob``."""
    with storages["mail"].open(blob.storage_key, "rb") as handle:
        return handle.read()


def inbound_receipts_stale(*, received_before: datetime, limit: int = 500) -> list[int]:
    """Receipts still waiting to be parsed well after they arrived (their task was lost)."""
    pending = InboundReceipt.objects.filter(status=InboundReceipt.Status.RECEIVED, received_at__lt=received_before)
    return list(pending.order_by("received_at").values_list("id", flat=True)[:limit])


def blob_open(*, blob: Blob) -> File:
    """The stored bytes of ``blob`` as an open file, to stream without loading them whole."""
    return storages["mail"].open(blob.storage_key, "rb")
