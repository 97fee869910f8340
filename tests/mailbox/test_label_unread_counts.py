"""The unread counts PostgreSQL keeps per label (``mailbox_label.unread_threads``, kept by triggers on
``mailbox_threadlabel``) stay equal to the threads counted, through every way threads change."""

import pytest
from django.db import connection
from django.db.models import Count

from mailbox import selectors
from mailbox.models import Label, ThreadLabel
from mailbox.services import message_import_raw
from mailbox.services.bulk import threads_action_apply, undo_apply
from mailbox.services.conversations import thread_merge
from mailbox.services.preferences import user_label_create, user_label_delete, user_label_update
from tests.mail import raw_message


def _counted(mailbox) -> dict[int, int]:
    """Unread threads per label, counted from the rows."""
    rows = ThreadLabel.objects.filter(mailbox=mailbox, unread_count__gt=0).values("label_id").annotate(n=Count("*"))
    return {row["label_id"]: row["n"] for row in rows}


def _assert_kept(*mailboxes) -> None:
    for mailbox in mailboxes:
        counted = _counted(mailbox)
        assert selectors.label_unread_counts(mailbox=mailbox) == counted
        overview = selectors.label_overview(mailbox=mailbox)
        assert overview.unread == counted


def _deliver(mailbox, message_id: str, subject: str, *, in_reply_to: str = "") -> int:
    raw = raw_message(message_id, subject, in_reply_to=in_reply_to)
    return message_import_raw(mailbox=mailbox, raw=raw, source_tag="t", label_roles=("inbox",)).message.thread_id


@pytest.mark.django_db
def test_the_kept_counts_follow_every_kind_of_change(mailbox, other_mailbox):
    threads = [_deliver(mailbox, f"u{n}@x", f"Subject {n}") for n in range(6)]
    _deliver(mailbox, "u0-reply@x", "Re: Subject 0", in_reply_to="u0@x")  # a thread already unread
    _deliver(other_mailbox, "o1@x", "Theirs")
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    assert selectors.label_unread_counts(mailbox=mailbox) == {inbox.id: 6}
    _assert_kept(mailbox, other_mailbox)

    work = user_label_create(mailbox=mailbox, name="Work", colour="#188038")
    steps = [
        ("add_label", threads[:4], work),
        ("read", threads[:2], None),
        ("unread", threads[1:2], None),
        ("archive", threads[2:3], None),
        ("spam", threads[3:4], None),
        ("not_spam", threads[3:4], None),
        ("trash", threads[3:5], None),  # a labelled thread among them: it keeps its label
        ("restore", threads[3:5], None),
        ("remove_label", threads[1:2], work),
        ("move", threads[5:6], work),
        ("delete_forever", threads[4:5], None),
    ]
    for action, ids, label in steps:
        result = threads_action_apply(mailbox=mailbox, action=action, thread_ids=ids, label=label)
        _assert_kept(mailbox, other_mailbox)
        if result.undo is not None and action in ("read", "archive"):
            undo_apply(mailbox=mailbox, undo=result.undo)
            _assert_kept(mailbox, other_mailbox)

    thread_merge(mailbox=mailbox, thread_ids=[threads[1]], into_thread_id=threads[0])
    _assert_kept(mailbox, other_mailbox)
    user_label_update(label=work, name="Work (old)", colour="#188038")  # a save that must not reset the count
    assert selectors.label_unread_counts(mailbox=mailbox)[work.id] == _counted(mailbox)[work.id]
    user_label_delete(label=work)
    _assert_kept(mailbox, other_mailbox)
    threads_action_apply(mailbox=mailbox, action="trash", thread_ids=threads)
    threads_action_apply(mailbox=mailbox, action="empty_trash", thread_ids=[])
    _assert_kept(mailbox, other_mailbox)
    assert selectors.label_unread_counts(mailbox=mailbox) == {}


@pytest.mark.django_db
def test_a_statement_changing_many_rows_moves_each_label_by_its_net_change(mailbox):
    threads = [_deliver(mailbox, f"m{n}@x", f"Subject {n}") for n in range(3)]
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)

    with connection.cursor() as cursor:  # as a raw bulk write would: one statement, mixed changes
        cursor.execute(
            "UPDATE mailbox_threadlabel SET unread_count = CASE WHEN thread_id = %s THEN 1 ELSE 0 END "
            "WHERE mailbox_id = %s",
            [threads[0], mailbox.id],
        )

    assert selectors.label_unread_counts(mailbox=mailbox) == {inbox.id: 1}
    _assert_kept(mailbox)
