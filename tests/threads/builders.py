"""Threaded test mail: raw messages with any threading headers, delivered through the real pipeline."""

from email.message import EmailMessage

from mailbox.models import Label, Mailbox, Message
from mailbox.services import message_import_raw
from mailbox.services.conversations import thread_drift_find
from threads.models import Thread


def raw_mail(
    message_id: str,
    subject: str = "Budget",
    *,
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    sender: str = "Carol <carol@example.org>",
    to: str = "alice@example.test",
    cc: str = "",
    bcc: str = "",
    list_id: str = "",
    date: str = "Mon, 02 Nov 2026 10:00:00 +0000",
    body: str = "",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    for name, value in (("Cc", cc), ("Bcc", bcc), ("List-Id", list_id)):
        if value:
            msg[name] = value
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    msg["Date"] = date
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    msg.set_content(body or f"Body of {message_id}")
    return bytes(msg)


def deliver(
    mailbox: Mailbox,
    message_id: str,
    subject: str = "Budget",
    *,
    label_roles: tuple[str, ...] = (Label.Role.INBOX,),
    is_read: bool = False,
    source_tag: str = "test",
    **headers,
) -> Message:
    raw = raw_mail(message_id, subject, **headers)
    return message_import_raw(
        mailbox=mailbox, raw=raw, source_tag=source_tag, label_roles=label_roles, is_read=is_read
    ).message


def reply(mailbox: Mailbox, message_id: str, parent: Message, **headers) -> Message:
    """A reply with full headers: In-Reply-To the parent, References its chain plus the parent."""
    chain = (*parent.references, parent.message_id)
    return deliver(
        mailbox, message_id, f"Re: {parent.subject}", in_reply_to=parent.message_id, references=chain, **headers
    )


def thread_of(message: Message) -> Thread:
    return Thread.objects.get(pk=Message.objects.get(pk=message.pk).thread_id)


def assert_no_drift(mailbox: Mailbox) -> None:
    """Every thread of the mailbox equals its recount from the messages, label rows included."""
    ids = list(Thread.objects.filter(mailbox_id=mailbox.id).values_list("pk", flat=True))
    assert thread_drift_find(mailbox_id=mailbox.id, thread_ids=ids) == []


def published_capture(monkeypatch) -> list[dict]:
    """The live events of thread changes, appended as they would leave: when the transaction commits.
    (tests/mailsite/test_realtime.py sends them through the real channel layers.)"""
    from django.db import transaction

    events: list[dict] = []

    def record(*, mailbox_id: int, event: dict) -> None:
        transaction.on_commit(lambda: events.append(event))

    def record_many(*, events: list[tuple[int, dict]]) -> None:
        for mailbox_id, event in events:
            record(mailbox_id=mailbox_id, event=event)

    monkeypatch.setattr("mailbox.services.conversations.mailbox_publish_on_commit", record)
    monkeypatch.setattr("mailbox.services.delivering.mailbox_publish_many_on_commit", record_many)
    return events


def thread_events(mailbox: Mailbox, event_type: str) -> dict[int, dict]:
    """The domain events of one type in the mailbox: payload by thread id (one event per thread)."""
    from mailsite.models import DomainEvent

    rows = DomainEvent.objects.filter(mailbox_id=mailbox.id, event_type=event_type, subject_type="thread")
    found = {}
    for event in rows.order_by("id"):
        assert event.subject_id not in found, f"two {event_type} events for thread {event.subject_id}"
        assert event.payload["thread_id"] == event.subject_id
        found[event.subject_id] = {**event.payload, "event_id": event.id}
    return found
