from email.message import EmailMessage

import pytest

from mailbox.models import Label, Message, ThreadLabel
from mailbox.selectors import label_unread_counts
from mailbox.services import message_import_raw
from mailsite.models import DomainEvent
from threads.models import Thread


def _raw(message_id: str, subject: str, *, in_reply_to: str = "", sender: str = "carol@example.org") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Carol <{sender}>"
    msg["To"] = "alice@example.test"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    msg.set_content(f"Body of {subject}")
    return bytes(msg)


@pytest.mark.django_db
def test_import_creates_message_thread_and_inbox_entry(mailbox):
    delivered = message_import_raw(mailbox=mailbox, raw=_raw("a@x", "Hello"), source_tag="import")

    message = delivered.message
    assert delivered.created
    assert message.subject == "Hello"
    assert message.from_address == "carol@example.org"
    thread = Thread.objects.get(pk=message.thread_id)
    assert (thread.message_count, thread.unread_count, thread.mailbox_id) == (1, 1, mailbox.id)
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    assert ThreadLabel.objects.get(label=inbox, thread=thread).unread_count == 1
    assert DomainEvent.objects.filter(event_type="message.received", subject_id=message.id).exists()


@pytest.mark.django_db
def test_reply_joins_the_thread_of_its_parent(mailbox):
    first = message_import_raw(mailbox=mailbox, raw=_raw("a@x", "Hello"), source_tag="import").message
    reply = message_import_raw(mailbox=mailbox, raw=_raw("b@x", "Re: Hello", in_reply_to="a@x"), source_tag="import")

    assert reply.message.thread_id == first.thread_id
    assert reply.message.thread_reason == Message.ThreadReason.REFERENCE
    assert Thread.objects.get(pk=first.thread_id).message_count == 2


@pytest.mark.django_db
def test_importing_the_same_bytes_twice_changes_nothing(mailbox):
    raw = _raw("a@x", "Hello")
    message_import_raw(mailbox=mailbox, raw=raw, source_tag="import")
    again = message_import_raw(mailbox=mailbox, raw=raw, source_tag="import")

    assert not again.created
    assert Message.objects.filter(mailbox=mailbox).count() == 1
    assert Thread.objects.get(pk=again.message.thread_id).message_count == 1


@pytest.mark.django_db
def test_unread_counts_are_per_label(mailbox):
    message_import_raw(mailbox=mailbox, raw=_raw("a@x", "Hello"), source_tag="import")
    message_import_raw(
        mailbox=mailbox,
        raw=_raw("b@x", "Re: Hello", in_reply_to="a@x", sender="alice@example.test"),
        source_tag="import",
        label_roles=(Label.Role.SENT,),
        is_read=True,
    )
    inbox, sent = (Label.objects.get(mailbox=mailbox, role=r) for r in (Label.Role.INBOX, Label.Role.SENT))

    assert ThreadLabel.objects.get(label=inbox).unread_count == 1
    assert ThreadLabel.objects.get(label=sent).unread_count == 0
    assert label_unread_counts(mailbox=mailbox) == {inbox.id: 1}
