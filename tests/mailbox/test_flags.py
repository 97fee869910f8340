"""The user's actions on messages keep thread summaries and the label index exact."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from mailbox.models import Label, Message, MessageLabel, ThreadLabel
from mailbox.services import flags as flags_module
from mailbox.services import (
    mailbox_create,
    messages_delete,
    messages_label_add,
    messages_label_remove,
    messages_mark_read,
    messages_star,
    messages_trash,
)
from mailbox.services.labels import label_get_or_create
from tests.threads.builders import assert_no_drift, deliver, reply, thread_of
from threads.models import Thread, ThreadMessageId

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(mailbox):
    """Three unread Inbox messages in one thread, the last one the newest."""
    a = deliver(mailbox, "a@x", "Budget 2027", date="Mon, 02 Nov 2026 10:00:00 +0000")
    b = reply(mailbox, "b@x", a, sender="Dave <dave@example.org>", date="Tue, 03 Nov 2026 10:00:00 +0000")
    c = reply(mailbox, "c@x", b, date="Wed, 04 Nov 2026 10:00:00 +0000")
    return a, b, c


def _label(mailbox, role):
    return Label.objects.get(mailbox=mailbox, role=role)


def _row(mailbox, role, thread_id):
    return ThreadLabel.objects.filter(mailbox=mailbox, label=_label(mailbox, role), thread_id=thread_id).first()


def test_marking_read_and_unread_moves_every_unread_count(mailbox, conversation):
    a, b, _ = conversation

    assert messages_mark_read(mailbox=mailbox, message_ids=[a.pk, b.pk]) == 2
    assert messages_mark_read(mailbox=mailbox, message_ids=[a.pk]) == 0  # already read

    assert thread_of(a).unread_count == 1
    assert _row(mailbox, Label.Role.INBOX, a.thread_id).unread_count == 1
    assert messages_mark_read(mailbox=mailbox, message_ids=[a.pk], is_read=False) == 1
    assert thread_of(a).unread_count == 2
    assert_no_drift(mailbox)


def test_unread_counts_stay_per_label(mailbox, conversation):
    a, b, c = conversation
    work = label_get_or_create(mailbox=mailbox, name="Work")
    messages_label_add(mailbox=mailbox, message_ids=[a.pk], label=work)

    messages_mark_read(mailbox=mailbox, message_ids=[a.pk, b.pk, c.pk])

    assert (
        _row(mailbox, Label.Role.INBOX, a.thread_id).unread_count,
        ThreadLabel.objects.get(label=work).unread_count,
    ) == (
        0,
        0,
    )
    assert_no_drift(mailbox)


def test_starring_counts_on_the_thread(mailbox, conversation):
    a, b, _ = conversation

    assert messages_star(mailbox=mailbox, message_ids=[a.pk, b.pk]) == 2
    assert messages_star(mailbox=mailbox, message_ids=[b.pk], is_starred=False) == 1

    assert thread_of(a).starred_count == 1
    assert_no_drift(mailbox)


def test_a_label_lists_the_thread_from_its_first_message_until_its_last_leaves(mailbox, conversation):
    a, b, c = conversation
    work = label_get_or_create(mailbox=mailbox, name="Work")

    assert messages_label_add(mailbox=mailbox, message_ids=[a.pk, b.pk], label=work) == 2
    assert messages_label_add(mailbox=mailbox, message_ids=[a.pk], label=work) == 0
    row = ThreadLabel.objects.get(label=work)
    assert (row.message_count, row.unread_count, row.last_message_at) == (2, 2, thread_of(c).last_message_at)

    assert messages_label_remove(mailbox=mailbox, message_ids=[a.pk], label=work) == 1
    assert ThreadLabel.objects.get(label=work).message_count == 1
    messages_label_remove(mailbox=mailbox, message_ids=[b.pk], label=work)
    assert not ThreadLabel.objects.filter(label=work).exists()
    assert_no_drift(mailbox)


def test_trash_replaces_every_label_with_trash(mailbox, conversation):
    a, b, c = conversation

    assert messages_trash(mailbox=mailbox, message_ids=[a.pk, b.pk, c.pk]) == 3

    assert _row(mailbox, Label.Role.INBOX, a.thread_id) is None
    assert _row(mailbox, Label.Role.TRASH, a.thread_id).message_count == 3
    assert set(MessageLabel.objects.filter(mailbox=mailbox).values_list("label__role", flat=True)) == {"trash"}
    assert_no_drift(mailbox)


def test_trashing_part_of_a_thread_leaves_the_rest_in_the_inbox(mailbox, conversation):
    a, _, c = conversation

    messages_trash(mailbox=mailbox, message_ids=[c.pk])

    assert _row(mailbox, Label.Role.INBOX, a.thread_id).message_count == 2
    assert _row(mailbox, Label.Role.TRASH, a.thread_id).message_count == 1
    assert_no_drift(mailbox)


def test_deleting_the_newest_message_forever_recounts_the_thread(mailbox, conversation):
    a, b, c = conversation

    assert messages_delete(mailbox=mailbox, message_ids=[c.pk]) == 1

    thread = thread_of(a)
    assert (thread.message_count, thread.unread_count) == (2, 2)
    assert thread.last_message_at == datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    assert thread.snippet == Message.objects.get(pk=b.pk).snippet
    assert _row(mailbox, Label.Role.INBOX, a.thread_id).last_message_at == thread.last_message_at
    assert not ThreadMessageId.objects.get(mailbox_id=mailbox.id, message_id="c@x").seen
    # A late reply to the deleted message still finds the conversation.
    assert deliver(mailbox, "d@x", "Re: Budget 2027", in_reply_to="c@x").thread_id == a.thread_id
    assert_no_drift(mailbox)


def test_deleting_every_message_deletes_the_thread(mailbox, conversation):
    ids = [m.pk for m in conversation]
    thread_id = conversation[0].thread_id

    assert messages_delete(mailbox=mailbox, message_ids=ids) == 3

    assert not Thread.objects.filter(pk=thread_id).exists()
    assert not ThreadLabel.objects.filter(thread_id=thread_id).exists()


def test_another_mailboxs_messages_and_labels_are_out_of_reach(mailbox, conversation):
    other = mailbox_create(address="mallory@example.test", password=None)
    a = conversation[0]

    assert messages_mark_read(mailbox=other, message_ids=[a.pk]) == 0
    assert messages_delete(mailbox=other, message_ids=[a.pk]) == 0
    with pytest.raises(ValidationError):
        messages_label_add(mailbox=mailbox, message_ids=[a.pk], label=_label(other, Label.Role.TRASH))
    assert (thread_of(a).message_count, thread_of(a).unread_count) == (3, 3)


def test_changes_are_pushed_only_after_commit(mailbox, conversation, monkeypatch, django_capture_on_commit_callbacks):
    pushed = []
    monkeypatch.setattr(
        "mailbox.services.conversations.mailbox_publish_on_commit",
        lambda *, mailbox_id, event: flags_module.transaction.on_commit(lambda: pushed.append(event)),
    )
    a = conversation[0]

    with django_capture_on_commit_callbacks(execute=True):
        messages_mark_read(mailbox=mailbox, message_ids=[a.pk])
        assert pushed == []

    assert pushed == [{"type": "thread.updated", "thread_id": a.thread_id}]
