"""``rows_insert`` writes what ``bulk_create`` writes, in one short statement, and sets the ids;
``row_insert_unless_present`` writes one row the same way unless it is there already."""

import hashlib
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery.models import Blob, InboundReceipt
from mailsite.rows import row_insert_unless_present, rows_insert, rows_insert_unless_present


def _blob(n: int) -> Blob:
    sha = hashlib.sha256(str(n).encode()).hexdigest()
    return Blob(sha256=sha, size=n, storage_key=f"blobs/{sha}")


def _receipts(blob: Blob, prefix: str, now: datetime) -> list[InboundReceipt]:
    recipients = [[], ["a@example.test"], ['we"ird\\one@example.test', "ünï@例え.jp", "b@example.test"]]
    return [
        InboundReceipt(
            source=InboundReceipt.Source.IMPORT,
            event_id=f"{prefix}-{n}",
            blob=blob,
            envelope_recipients=to,
            verdicts={"spam": n == 1, "score": 2.5} if n else {},
            metadata={"labels": ["Work", 'a "quoted" \\ label'], "is_read": True, "nested": {"x": [1, None]}},
            received_at=now,
        )
        for n, to in enumerate(recipients)
    ]


_THREE_IDS_SQL = "SELECT nextval(pg_get_serial_sequence('delivery_inboundreceipt', 'id')) FROM generate_series(1, 3)"


def _columns(prefix: str) -> list[tuple]:
    rows = InboundReceipt.objects.filter(event_id__startswith=prefix).order_by("event_id")
    names = [f.attname for f in InboundReceipt._meta.concrete_fields if f.attname not in {"id", "event_id"}]
    return list(rows.values_list(*names))


@pytest.mark.django_db
def test_rows_insert_writes_what_bulk_create_writes_and_sets_ids():
    blobs = [_blob(1), _blob(2)]
    rows_insert(objs=blobs)
    assert all(b.pk and not b._state.adding and b.created_at for b in blobs)  # auto_now_add applied
    assert Blob.objects.get(pk=blobs[1].pk).sha256 == blobs[1].sha256
    now = timezone.now()
    ours, django = _receipts(blobs[0], "ours", now), _receipts(blobs[0], "orm", now)

    with CaptureQueriesContext(connection) as queries:
        rows_insert(objs=ours)
    InboundReceipt.objects.bulk_create(django)

    assert len(queries) == 1
    assert [r.pk for r in ours] == list(
        InboundReceipt.objects.filter(event_id__startswith="ours").order_by("event_id").values_list("id", flat=True)
    )
    assert _columns("ours") == _columns("orm")
    stored = InboundReceipt.objects.get(pk=ours[2].pk)
    assert stored.envelope_recipients == ['we"ird\\one@example.test', "ünï@例え.jp", "b@example.test"]
    assert stored.metadata["labels"] == ["Work", 'a "quoted" \\ label']
    assert stored.status == "received"


@pytest.mark.django_db
def test_rows_insert_with_ids_given_writes_those_ids_and_what_bulk_create_writes():
    blob = _blob(3)
    rows_insert(objs=[blob])
    now = timezone.now()
    ours, django = _receipts(blob, "given", now), _receipts(blob, "orm", now)
    with connection.cursor() as cursor:
        cursor.execute(_THREE_IDS_SQL)
        ids = [row[0] for row in cursor.fetchall()][::-1]  # not in insertion order: each row keeps its own
    for receipt, pk in zip(ours, ids, strict=True):
        receipt.pk = pk

    with CaptureQueriesContext(connection) as queries:
        rows_insert(objs=ours)
    InboundReceipt.objects.bulk_create(django)

    assert len(queries) == 1
    assert [r.pk for r in ours] == ids
    assert not any(r._state.adding for r in ours)
    stored = dict(InboundReceipt.objects.filter(event_id__startswith="given").values_list("event_id", "id"))
    assert stored == {r.event_id: pk for r, pk in zip(ours, ids, strict=True)}
    assert _columns("given") == _columns("orm")


@pytest.mark.django_db
def test_rows_insert_of_nothing_sends_nothing():
    with CaptureQueriesContext(connection) as queries:
        rows_insert(objs=[])
    assert not queries


@pytest.mark.django_db
def test_row_insert_unless_present_writes_a_new_row_once_in_one_statement():
    first, again = _blob(7), _blob(7)

    with CaptureQueriesContext(connection) as queries:
        assert row_insert_unless_present(obj=first) is True
    assert row_insert_unless_present(obj=again) is False

    assert len(queries) == 1
    assert first.pk
    assert not first._state.adding
    assert first.created_at  # auto_now_add applied
    assert again.pk is None  # nothing written, no id taken
    assert again._state.adding
    assert Blob.objects.filter(sha256=first.sha256).count() == 1
    now = timezone.now()
    ours, django = _receipts(first, "one", now)[2], _receipts(first, "orm", now)[2]
    assert row_insert_unless_present(obj=ours) is True
    django.save()
    assert _columns("one") == _columns("orm")


@pytest.mark.django_db
def test_rows_insert_keeps_ids_drawn_beforehand():
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('delivery_blob', 'id')) FROM generate_series(1, 2)")
        drawn = [row[0] for row in cursor.fetchall()]
    blobs = [_blob(11), _blob(12)]
    for blob, pk in zip(blobs, drawn, strict=True):
        blob.pk = pk

    rows_insert(objs=blobs)

    assert [b.pk for b in blobs] == drawn
    assert not any(b._state.adding for b in blobs)
    assert dict(Blob.objects.filter(pk__in=drawn).values_list("pk", "sha256")) == {b.pk: b.sha256 for b in blobs}
    mixed = [_blob(13), _blob(14)]
    mixed[0].pk = drawn[0] + 1_000_000
    with pytest.raises(ValueError, match="some rows and not others"):
        rows_insert(objs=mixed)


@pytest.mark.django_db
def test_rows_insert_unless_present_skips_rows_there_already_or_twice_in_one_statement():
    there = _blob(21)
    rows_insert(objs=[there])

    with CaptureQueriesContext(connection) as queries:
        written = rows_insert_unless_present(objs=[_blob(21), _blob(22), _blob(23), _blob(22)])

    assert (written, len(queries)) == (2, 1)
    shas = [_blob(n).sha256 for n in (21, 22, 23)]
    assert Blob.objects.filter(sha256__in=shas).count() == 3
    assert Blob.objects.get(sha256=there.sha256).pk == there.pk
    assert rows_insert_unless_present(objs=[]) == 0
