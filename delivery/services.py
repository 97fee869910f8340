"""Writes of the transport layer."""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from delivery.models import Blob, InboundReceipt
from mailsite.rows import row_insert_unless_present, rows_insert


def blob_storage_key(sha256: str) -> str:
    """Content address in the mail storage; two levels of fan-out keep directories small."""
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def blob_store(*, data: bytes) -> Blob:
    """Store ``data`` once, content-addressed, and return its row (existing or new).

    The bytes are written before the row is created, so a row always points at stored bytes;
    writing the same key twice writes the same bytes. Safe to call concurrently.
    """
    return _blob_store(sha256=hashlib.sha256(data).hexdigest(), size=len(data), content=ContentFile(data))


def blob_store_file(*, file: File) -> Blob:
    """Like ``blob_store`` for an uploaded file, read in chunks: hashed in one pass, then streamed
    to storage, so a large upload is never held in memory whole."""
    digest = hashlib.sha256()
    size = 0
    for chunk in file.chunks():
        digest.update(chunk)
        size += len(chunk)
    file.seek(0)
    return _blob_store(sha256=digest.hexdigest(), size=size, content=file)


def _blob_store(*, sha256: str, size: int, content: File) -> Blob:
    existing = Blob.objects.filter(sha256=sha256).first()
    if existing is not None:
        return existing
    key = blob_storage_key(sha256)
    storage = storages["mail"]
    if not storage.exists(key):
        saved_as = storage.save(key, content)
        if saved_as != key:
            raise RuntimeError(f"mail storage renamed blob {key} to {saved_as}; it must allow overwrites")
    blob = Blob(sha256=sha256, size=size, storage_key=key)
    # Uniqueness and the hex/size checks are constraints PostgreSQL enforces on insert.
    blob.full_clean(validate_unique=False, validate_constraints=False)
    if row_insert_unless_present(obj=blob):
        return blob
    # Another writer created the row between our look-up and insert: theirs stands.
    return Blob.objects.get(sha256=sha256)


def blobs_store(*, datas: list[bytes]) -> dict[str, Blob]:
    """Store many byte strings at once, content-addressed: ``blob_store`` for a batch, with one
    look-up and one insert. Returns every blob by sha256 (existing or new)."""
    by_sha = {hashlib.sha256(data).hexdigest(): data for data in datas}
    blobs = {blob.sha256: blob for blob in Blob.objects.filter(sha256__in=by_sha)}
    storage = storages["mail"]
    missing = []
    to_write = {}
    for sha256, data in by_sha.items():
        if sha256 in blobs:
            continue
        key = blob_storage_key(sha256)
        if not storage.exists(key):
            to_write[key] = data
        missing.append(Blob(sha256=sha256, size=len(data), storage_key=key))
    _storage_save_many(storage, to_write)
    if missing:
        # Bytes first, rows second, as in blob_store; a concurrent writer's row stands.
        Blob.objects.bulk_create(missing, ignore_conflicts=True)
        blobs.update({b.sha256: b for b in Blob.objects.filter(sha256__in=[m.sha256 for m in missing])})
    return blobs


def _storage_save_many(storage: Storage, contents: dict[str, bytes]) -> None:
    """Write every key's bytes; the durable filesystem storage overlaps their fsyncs."""
    save_many = getattr(storage, "save_many", None)
    if save_many is not None:
        save_many(contents)
        return
    for key, data in contents.items():
        saved_as = storage.save(key, ContentFile(data))
        if saved_as != key:
            raise RuntimeError(f"mail storage renamed blob {key} to {saved_as}; it must allow overwrites")


@dataclass(frozen=True)
class Arrival:
    """One arrival of raw mail, as ``inbound_receipt_create`` takes it."""

    source: str
    raw: bytes
    esp: str = ""
    event_id: str = ""
    envelope_sender: str = ""
    envelope_recipients: tuple[str, ...] = ()
    verdicts: dict[str, Any] | None = None
    correlation_id: str = ""
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class ReceiptStored:
    receipt: InboundReceipt
    created: bool


# No savepoint of its own: a failure anywhere rolls back the caller's transaction anyway (the
# caller answers 5xx/451 and the sender retries), and a replay is told by ON CONFLICT, not by
# catching an error. Two statements fewer on every arrival.
@transaction.atomic(savepoint=False)
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
    arrival = Arrival(
        source, raw, esp, event_id, envelope_sender, tuple(envelope_recipients), verdicts, correlation_id, metadata
    )
    receipt = _receipt_build(arrival, blob_store(data=raw))
    # The blob was just stored: no need to look its row up again to validate the foreign key.
    receipt.full_clean(exclude=["blob"], validate_unique=False, validate_constraints=False)
    if not row_insert_unless_present(obj=receipt):
        # The same arrival again (ESP retry, SMTP resend): the first one stands.
        return ReceiptStored(InboundReceipt.objects.get(source=source, esp=esp, event_id=receipt.event_id), False)
    return ReceiptStored(receipt, created=True)


def _receipt_build(arrival: Arrival, blob: Blob) -> InboundReceipt:
    return InboundReceipt(
        source=arrival.source,
        esp=arrival.esp,
        event_id=arrival.event_id[:255],
        blob=blob,
        envelope_sender=arrival.envelope_sender[:998],
        envelope_recipients=[r.strip().lower()[:998] for r in arrival.envelope_recipients if r.strip()],
        verdicts=arrival.verdicts or {},
        correlation_id=arrival.correlation_id[:64],
        metadata=arrival.metadata or {},
        received_at=timezone.now(),
    )


@transaction.atomic
def inbound_receipts_create(*, arrivals: list[Arrival]) -> list[ReceiptStored]:
    """``inbound_receipt_create`` for a batch (a bulk import): blobs and receipts each in one insert.

    Arrivals the database already holds, or that repeat an earlier one of the batch, come back as
    not created. If a concurrent writer inserts one of them meanwhile, the batch falls back to
    creating them one by one, each recognised by the unique constraint.
    """
    blobs = blobs_store(datas=[arrival.raw for arrival in arrivals])
    keys = {(a.source, a.esp, a.event_id[:255]) for a in arrivals if a.event_id}
    # Led by source and ESP, and excluding empty ids as the partial unique index does, so the look-up
    # uses that index: on the event id alone it read the whole table once per chunk of an import.
    candidates = InboundReceipt.objects.filter(
        source__in={key[0] for key in keys}, esp__in={key[1] for key in keys}, event_id__in={key[2] for key in keys}
    ).exclude(event_id="")
    known = {
        (r.source, r.esp, r.event_id): r
        for r in candidates.select_related("blob")
        if (r.source, r.esp, r.event_id) in keys
    }
    results: list[tuple[InboundReceipt, bool]] = []
    new: list[InboundReceipt] = []
    for arrival in arrivals:
        key = (arrival.source, arrival.esp, arrival.event_id[:255])
        if arrival.event_id and key in known:
            results.append((known[key], False))
            continue
        receipt = _receipt_build(arrival, blobs[hashlib.sha256(arrival.raw).hexdigest()])
        if arrival.event_id:
            known[key] = receipt
        new.append(receipt)
        results.append((receipt, True))
    try:
        with transaction.atomic():
            rows_insert(objs=new)  # one short statement: bulk_create sends a VALUES row per receipt
    except IntegrityError:
        return [_receipt_create_one(arrival) for arrival in arrivals]
    return [ReceiptStored(receipt, created) for receipt, created in results]


def _receipt_create_one(arrival: Arrival) -> ReceiptStored:
    return inbound_receipt_create(
        source=arrival.source,
        raw=arrival.raw,
        esp=arrival.esp,
        event_id=arrival.event_id,
        envelope_sender=arrival.envelope_sender,
        envelope_recipients=arrival.envelope_recipients,
        verdicts=arrival.verdicts,
        correlation_id=arrival.correlation_id,
        metadata=arrival.metadata,
    )


@transaction.atomic
def inbound_receipt_start_attempt(*, receipt_id: int) -> InboundReceipt | None:
    """Lock the receipt and count one more processing attempt; ``None`` if it is gone."""
    receipt = InboundReceipt.objects.select_for_update().filter(pk=receipt_id).first()
    if receipt is not None:
        receipt.attempts += 1
        receipt.save(update_fields=["attempts"])
    return receipt


def inbound_receipt_finish(
    *, receipt: InboundReceipt, status: str, error: str = "", unknown_recipients: list[str] | tuple[str, ...] = ()
) -> InboundReceipt:
    """Record the outcome of processing: parsed, failed or quarantined, with the reason, and the
    local recipients no mailbox answers to."""
    receipt.status = status
    receipt.last_error = error[:10_000]
    receipt.unknown_recipients = _addresses(unknown_recipients)
    receipt.parsed_at = timezone.now() if status == InboundReceipt.Status.PARSED else None
    receipt.save(update_fields=["status", "last_error", "unknown_recipients", "parsed_at"])
    return receipt


def _addresses(addresses: list[str] | tuple[str, ...]) -> list[str]:
    """Distinct, lower-cased, in the order given, each cut to the column's length."""
    return list(dict.fromkeys(address.strip().lower()[:998] for address in addresses if address.strip()))


@transaction.atomic
def inbound_receipt_reset(*, receipt_id: int) -> InboundReceipt:
    """Put a failed or quarantined receipt back in line for processing (staff, after a fix), with
    its tries counted afresh: the retries it used up were spent on the fault now fixed."""
    receipt = InboundReceipt.objects.select_for_update().get(pk=receipt_id)
    receipt.status = InboundReceipt.Status.RECEIVED
    receipt.attempts, receipt.retry_at = 0, None
    receipt.save(update_fields=["status", "attempts", "retry_at"])
    return receipt


def inbound_receipt_retry_schedule(*, receipt_id: int, at: datetime) -> None:
    """Record when the receipt's next try is due (its task waits out a back-off until then), so the
    sweeper leaves it alone meanwhile instead of starting a second chain of retries."""
    InboundReceipt.objects.filter(pk=receipt_id, status=InboundReceipt.Status.RECEIVED).update(retry_at=at)


def inbound_receipts_sweep(*, due_before: datetime, now: datetime, limit: int = 500) -> list[tuple[int, str]]:
    """Pick receipts still waiting although their try was due before ``due_before`` (their task was
    lost, e.g. the broker was down when they were committed), oldest first, and push their next due
    time as far past ``now`` as they have waited already (at most an hour): one that keeps waiting is
    queued again less and less often. Returns their ids and correlation ids, for the caller to queue."""
    with connection.cursor() as cursor:
        cursor.execute(_SWEEP_SQL, {"due_before": due_before, "now": now, "limit": limit})
        return sorted(cursor.fetchall())


_SWEEP_SQL = """
UPDATE delivery_inboundreceipt
SET retry_at = %(now)s + LEAST(%(now)s - COALESCE(retry_at, received_at), interval '1 hour')
WHERE id IN (
    SELECT id FROM delivery_inboundreceipt
    WHERE status = 'received' AND COALESCE(retry_at, received_at) < %(due_before)s
    ORDER BY COALESCE(retry_at, received_at)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING id, correlation_id
"""


def inbound_receipts_claim(*, receipt_ids: list[int], fill_to: int = 0) -> list[int]:
    """Pick the waiting receipts among ``receipt_ids`` (and, up to ``fill_to`` in all, other receipts
    for the same envelope recipients waiting their first attempt, oldest first), skipping any another
    worker holds, and count one attempt on each. Returns their ids. Two concurrent claims never take
    along the same receipt; a receipt named by one claim and taken along by another is returned to
    both, and ``inbound_receipts_lock``, in the transaction that processes it, lets one of them have it.

    Only receipts for the recipients of ``receipt_ids`` are taken along (also when those are taken
    already: a worker behind a backlog then keeps taking full batches for that mailbox instead of
    working through tasks that find nothing to do), so a batch places into the mailboxes its tasks
    were queued for, and workers busy with different mailboxes never wait for each other's
    delivery locks.

    One statement, committed at once (run it outside a transaction), so the attempt stays counted
    even if the worker dies processing them (and a receipt that killed a worker is never taken
    along again); ``inbound_receipts_lock`` then holds them while they are processed. A receipt
    claimed by a worker that died waits for its own task, redelivered, or for the sweeper.
    """
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [list(receipt_ids), list(receipt_ids), list(receipt_ids), fill_to])
        return sorted(row[0] for row in cursor.fetchall())


# Own receipts whatever their attempts (a retry is one); others only if never tried, so one that
# failed a try waits for its own task's back-off, and only with the envelope recipients of one of
# the named ones (claimable or not). ``FOR UPDATE SKIP LOCKED`` in each branch: rows a concurrent
# claim or batch holds are passed over, never waited for nor taken twice.
_CLAIM_SQL = """
WITH own AS (
    SELECT id FROM delivery_inboundreceipt
    WHERE id = ANY(%s) AND status = 'received'
    FOR UPDATE SKIP LOCKED
), others AS (
    SELECT id FROM delivery_inboundreceipt
    WHERE status = 'received' AND attempts = 0 AND NOT id = ANY(%s)
      AND envelope_recipients IN (SELECT envelope_recipients FROM delivery_inboundreceipt WHERE id = ANY(%s))
    ORDER BY received_at
    LIMIT GREATEST(%s - (SELECT count(*) FROM own), 0)
    FOR UPDATE SKIP LOCKED
)
UPDATE delivery_inboundreceipt SET attempts = attempts + 1
WHERE id IN (SELECT id FROM own UNION ALL SELECT id FROM others)
RETURNING id
"""


def inbound_receipts_lock(*, receipt_ids: list[int]) -> list[InboundReceipt]:
    """Lock those of ``receipt_ids`` still waiting and not held by another worker, with their blobs,
    in id order. Call inside the transaction that processes them: the locks last until it ends."""
    waiting = InboundReceipt.objects.filter(pk__in=receipt_ids, status=InboundReceipt.Status.RECEIVED)
    return list(waiting.select_related("blob").order_by("pk").select_for_update(skip_locked=True, of=("self",)))


def inbound_receipts_finish(*, receipts: list[InboundReceipt]) -> None:
    """Record the outcomes already set on ``receipts`` (status, last_error, unknown_recipients):
    one UPDATE per distinct outcome, usually one for the whole batch."""
    now = timezone.now()
    outcomes: dict[tuple[str, str, tuple[str, ...]], list[int]] = {}
    for receipt in receipts:
        receipt.last_error = receipt.last_error[:10_000]
        receipt.unknown_recipients = _addresses(receipt.unknown_recipients)
        receipt.parsed_at = now if receipt.status == InboundReceipt.Status.PARSED else None
        key = (receipt.status, receipt.last_error, tuple(receipt.unknown_recipients))
        outcomes.setdefault(key, []).append(receipt.pk)
    for (status, error, unknown), ids in outcomes.items():
        parsed_at = now if status == InboundReceipt.Status.PARSED else None
        InboundReceipt.objects.filter(pk__in=ids).update(
            status=status, last_error=error, unknown_recipients=list(unknown), parsed_at=parsed_at
        )
