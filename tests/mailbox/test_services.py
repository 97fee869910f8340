import pytest

from mailbox.models import Label, Message, ThreadLabel
from mailbox.selectors import label_unread_counts
from mailbox.services import message_import_raw
from mailsite.models import DomainEvent
from tests.mail import raw_message
from threads.models import Thread


def _raw(message_id: str, subject: str, *, in_reply_to: str = "", sender: str = "carol@example.org") -> bytes:
    return raw_message(message_id, subject, in_reply_to=in_reply_to, sender=f"Carol <{sender}>")


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


@pytest.mark.django_db
def test_a_sent_reply_moves_the_thread_up_every_label(mailbox):
    message_import_raw(mailbox=mailbox, raw=_raw("a@x", "Hello"), source_tag="import")
    reply = _raw("b@x", "Re: Hello", in_reply_to="a@x", sender="alice@example.test").replace(
        b"Mon, 02 Nov 2026 10:00:00", b"Tue, 03 Nov 2026 09:00:00"
    )
    message_import_raw(mailbox=mailbox, raw=reply, source_tag="import", label_roles=(Label.Role.SENT,), is_read=True)

    rows = ThreadLabel.objects.filter(mailbox=mailbox)
    thread = Thread.objects.get(mailbox_id=mailbox.id)
    assert rows.count() == 2
    assert {row.last_message_at for row in rows} == {thread.last_message_at}
    assert thread.last_message_at.day == 3
