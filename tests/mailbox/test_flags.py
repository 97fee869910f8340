"""The user's actions on messages keep thread summaries and the label index exact."""

from datetime import UTC, datetime
from unittest.mock import ANY

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from mailbox.models import Label, Message, MessageLabel, ThreadLabel
from mailbox.services import (
    mailbox_create,
    messages_delete,
    messages_label_add,
    messages_label_remove,
    messages_mark_read,
    messages_restore,
    messages_star,
    messages_trash,
)
from mailbox.services.labels import label_get_or_create
from mailsite.models import DomainEvent
from tests.threads.builders import (
    assert_no_drift,
    deliver,
    published_capture,
    reply,
    thread_events,
    thread_of,
)
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
    pushed = published_capture(monkeypatch)
    a = conversation[0]

    with django_capture_on_commit_callbacks(execute=True):
        messages_mark_read(mailbox=mailbox, message_ids=[a.pk])
        assert pushed == []

    event = DomainEvent.objects.get(event_type=DomainEvent.Type.MESSAGES_READ)
    assert pushed == [{"type": "thread.updated", "thread_id": a.thread_id, "event_id": event.id}]


# --- Domain events: one per thread changed, in the action's transaction ------------------


@pytest.fixture
def two_threads(mailbox):
    """Two unread threads: a ← b about the budget, and x alone about the party."""
    a = deliver(mailbox, "a@x", "Budget 2027")
    b = reply(mailbox, "b@x", a)
    x = deliver(mailbox, "x@x", "Party")
    return a, b, x


def _updated(events: dict[int, dict]) -> list[dict]:
    return [{"type": "thread.updated", "thread_id": t, "event_id": e["event_id"]} for t, e in sorted(events.items())]


@pytest.mark.parametrize(
    ("action", "undo", "done", "undone"),
    [
        (messages_mark_read, {"is_read": False}, DomainEvent.Type.MESSAGES_READ, DomainEvent.Type.MESSAGES_UNREAD),
        (messages_star, {"is_starred": False}, DomainEvent.Type.MESSAGES_STARRED, DomainEvent.Type.MESSAGES_UNSTARRED),
    ],
)
def test_flag_changes_record_one_event_per_thread_and_push_it(
    mailbox, two_threads, monkeypatch, django_capture_on_commit_callbacks, action, undo, done, undone
):
    a, b, x = two_threads
    pushed = published_capture(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        action(mailbox=mailbox, message_ids=[a.pk, b.pk, x.pk])
        action(mailbox=mailbox, message_ids=[a.pk, b.pk, x.pk])  # nothing changes: no event
        action(mailbox=mailbox, message_ids=[b.pk], **undo)

    events = thread_events(mailbox, done)
    assert {t: e["message_ids"] for t, e in events.items()} == {a.thread_id: [a.pk, b.pk], x.thread_id: [x.pk]}
    assert {t: e["message_ids"] for t, e in thread_events(mailbox, undone).items()} == {a.thread_id: [b.pk]}
    assert pushed == _updated(events) + _updated(thread_events(mailbox, undone))


def test_label_changes_record_the_label_per_thread(
    mailbox, two_threads, monkeypatch, django_capture_on_commit_callbacks
):
    a, _, x = two_threads
    work = label_get_or_create(mailbox=mailbox, name="Work")
    pushed = published_capture(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        messages_label_add(mailbox=mailbox, message_ids=[a.pk, x.pk], label=work)
        messages_label_remove(mailbox=mailbox, message_ids=[x.pk], label=work)

    labelled = thread_events(mailbox, DomainEvent.Type.MESSAGES_LABELLED)
    unlabelled = thread_events(mailbox, DomainEvent.Type.MESSAGES_UNLABELLED)
    assert labelled[a.thread_id]["label_id"] == work.id
    assert set(labelled) == {a.thread_id, x.thread_id}
    assert unlabelled == {
        x.thread_id: {"thread_id": x.thread_id, "message_ids": [x.pk], "label_id": work.id, "event_id": ANY}
    }
    assert pushed == _updated(labelled) + _updated(unlabelled)


def test_trash_and_restore_are_one_event_per_thread(
    mailbox, two_threads, monkeypatch, django_capture_on_commit_callbacks
):
    a, b, x = two_threads
    own = deliver(
        mailbox,
        "own@x",
        "Re: Budget 2027",
        sender="alice@example.test",
        to="carol@example.org",
        in_reply_to="b@x",
        references=("a@x", "b@x"),
        label_roles=(Label.Role.SENT,),
    )
    pushed = published_capture(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        messages_trash(mailbox=mailbox, message_ids=[a.pk, own.pk, x.pk])
        messages_restore(mailbox=mailbox, message_ids=[a.pk, own.pk, b.pk])  # b was never in Trash

    trashed = thread_events(mailbox, DomainEvent.Type.MESSAGES_TRASHED)
    restored = thread_events(mailbox, DomainEvent.Type.MESSAGES_RESTORED)
    assert {t: e["message_ids"] for t, e in trashed.items()} == {a.thread_id: [a.pk, own.pk], x.thread_id: [x.pk]}
    assert {t: e["message_ids"] for t, e in restored.items()} == {a.thread_id: [a.pk, own.pk]}
    assert not DomainEvent.objects.filter(event_type__in=["messages.labelled", "messages.unlabelled"]).exists()
    labels = dict(MessageLabel.objects.filter(message__in=[a, own]).values_list("message_id", "label__role"))
    assert labels == {a.pk: Label.Role.INBOX, own.pk: Label.Role.SENT}
    assert pushed == _updated(trashed) + _updated(restored)
    assert_no_drift(mailbox)


def test_deleting_forever_removes_emptied_threads_live(
    mailbox, two_threads, monkeypatch, django_capture_on_commit_callbacks
):
    a, b, x = two_threads
    pushed = published_capture(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        messages_delete(mailbox=mailbox, message_ids=[b.pk, x.pk])

    events = thread_events(mailbox, DomainEvent.Type.MESSAGES_DELETED)
    assert events[x.thread_id] == {
        "thread_id": x.thread_id,
        "message_ids": [x.pk],
        "merged_into": None,
        "event_id": ANY,
    }
    assert events[a.thread_id] == {"thread_id": a.thread_id, "message_ids": [b.pk], "event_id": ANY}
    assert pushed == [
        {"type": "thread.updated", "thread_id": a.thread_id, "event_id": events[a.thread_id]["event_id"]},
        {
            "type": "thread.removed",
            "thread_id": x.thread_id,
            "merged_into": None,
            "event_id": events[x.thread_id]["event_id"],
        },
    ]


def test_an_action_rolled_back_leaves_no_event_and_pushes_nothing(
    mailbox, two_threads, monkeypatch, django_capture_on_commit_callbacks
):
    a, _, x = two_threads
    pushed = published_capture(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012
        messages_mark_read(mailbox=mailbox, message_ids=[a.pk, x.pk])
        raise RuntimeError("the caller's transaction fails")

    assert not DomainEvent.objects.filter(event_type=DomainEvent.Type.MESSAGES_READ).exists()
    assert pushed == []
    assert thread_of(a).unread_count == 2


def test_a_bulk_action_over_many_threads_is_one_event_each_in_few_statements(
    mailbox, monkeypatch, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    messages = [deliver(mailbox, f"m{n}@x", f"Topic number {n}") for n in range(12)]
    pushed = published_capture(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(60):
        messages_mark_read(mailbox=mailbox, message_ids=[m.pk for m in messages])

    assert len(thread_events(mailbox, DomainEvent.Type.MESSAGES_READ)) == 12
    assert len(pushed) == 12
