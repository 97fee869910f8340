"""A batch writes every column of a message's rows exactly as a delivery alone does.

A batch inserts its messages with one UNNEST statement (``mailsite.rows.rows_insert``: arrays as
JSON, the search documents computed from their texts in SQL) where a delivery alone saves the model.
The same mail (the fixtures' edge cases, plus references, authentication results, quotes and
backslashes, non-Latin text) goes into one mailbox one message at a time and into another as one
batch: every column of the messages, their search documents, bodies, labels, participants and
attachments must agree, the mailbox and ids aside.
"""

from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from delivery.services import blob_store
from mailbox.models import Attachment, Mailbox, Message, MessageBody, MessageLabel, Participant
from mailbox.parsing import parse_message
from mailbox.services import message_deliver
from mailbox.services.delivering import Copy, DeferredRows, copies_deliver, mailbox_deliveries_lock
from mailsite.models import DomainEvent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
AUTHSERV = "mx.example.test"
_NOT_COMPARED = {"id", "mailbox", "thread", "receipt"}


def _special() -> list[bytes]:
    return [
        (
            'From: =?utf-8?q?J=C3=BCrgen_\\\\_"Q"?= <jurgen@example.org>\r\nTo: alice@example.test, '
            "Bob <bob@example.org>\r\nCc: carol@example.org\r\nSubject: =?utf-8?b?0J/RgNC40LLQtdGC?= 中文\r\n"
            f"Authentication-Results: {AUTHSERV}; spf=pass; dkim=fail; dmarc=pass\r\n"
            'References: <root@x> <we"ird\\id@x> <child@x>\r\nIn-Reply-To: <child@x>\r\n'
            "List-Id: Team <team.example.org>\r\nList-Unsubscribe: <mailto:leave@example.org>\r\n"
            "Message-ID: <special@x>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\n"
            "Body with a backslash \\ and 'quotes' \"here\", {braces}, and ß.\r\n"
        ).encode(),
        b"From: nobody@example.org\r\nSubject: no id, no date\r\n\r\nplain\r\n",
    ]


def _copies() -> list[Copy]:
    raws = [path.read_bytes() for path in sorted(FIXTURES.rglob("*")) if path.is_file() and path.suffix != ".md"]
    raws += _special()
    received_at = timezone.now()
    copies, seen = [], set()
    for raw in raws:
        if raw in seen:
            continue
        seen.add(raw)
        parsed = parse_message(raw, received_at=received_at, authserv_ids=(AUTHSERV,))
        copies.append(Copy(blob_store(data=raw), parsed, "test", is_read=len(seen) % 2 == 0, received_at=received_at))
    return copies


def _rows(mailbox: Mailbox) -> dict[str, list[tuple]]:
    """Every row of the mailbox's messages, keyed by the message's blob, ids left out."""
    columns = [f.attname for f in Message._meta.concrete_fields if f.name not in _NOT_COMPARED]
    messages = Message.objects.filter(mailbox=mailbox)
    blob_of = dict(messages.values_list("id", "blob_id"))
    related = {
        "body": MessageBody.objects.values_list("message_id", "text", "html"),
        "label": MessageLabel.objects.values_list("message_id", "label__name"),
        "participant": Participant.objects.values_list("message_id", "role", "address", "display_name", "position"),
        "attachment": Attachment.objects.values_list(
            "message_id", "blob_id", "filename", "content_type", "size", "content_id", "is_inline", "position"
        ),
        "event": DomainEvent.objects.filter(event_type="message.received").values_list(
            "subject_id", "payload__message_id", "source_tag", "occurred_at"
        ),
    }
    found = {"message": sorted(tuple(map(str, row)) for row in messages.values_list(*columns))}
    for name, rows in related.items():
        found[name] = sorted((blob_of[row[0]], *row[1:]) for row in rows if row[0] in blob_of)
    return found


@pytest.mark.django_db
def test_a_batch_writes_every_column_as_a_delivery_alone_does(mailbox, other_mailbox):
    copies = _copies()
    assert len(copies) > 40

    for copy in copies:
        message_deliver(
            mailbox=mailbox,
            blob=copy.blob,
            parsed=copy.parsed,
            source_tag=copy.source_tag,
            is_read=copy.is_read,
            received_at=copy.received_at,
        )
    with transaction.atomic():
        mailbox_deliveries_lock(mailbox_ids=[other_mailbox.id], exclusive=True)
        delivered = copies_deliver(copies=[(other_mailbox, copy) for copy in copies], deferred=DeferredRows())

    assert all(message.pk for message in delivered)
    alone, batched = _rows(mailbox), _rows(other_mailbox)
    assert len(alone["message"]) == len(copies)
    for name in alone:
        assert batched[name] == alone[name], name
    special = Message.objects.get(mailbox=other_mailbox, message_id="special@x")
    assert special.references == ["root@x", 'we"ird\\id@x', "child@x"]
    assert special.authentication_results == {"spf": "pass", "dkim": "fail", "dmarc": "pass"}
    assert Message.objects.filter(mailbox=other_mailbox, search_document__isnull=True).count() == 0
