"""A conversation wholly in Trash or Spam shows only in its own folder (and in searches): not in
Starred, not under its user labels, not in Sent. Trash keeps its user labels, so
Restore brings them back, and the mailbox's own messages go back to Sent, not the Inbox."""

import pytest
from django.urls import reverse

from mailbox import selectors
from mailbox.models import Label, Message, MessageLabel
from mailbox.services import message_import_raw
from mailbox.services.bulk import threads_action_apply
from mailbox.services.preferences import user_label_create
from tests.mail import raw_message

pytestmark = pytest.mark.django_db


def _thread(mailbox, key: str) -> int:
    raw = raw_message(f"{key}@x", f"Subject {key}")
    return message_import_raw(mailbox=mailbox, raw=raw, source_tag="t", label_roles=("inbox",)).message.thread_id


def _listed(client, url: str, thread_id: int) -> bool:
    return f'data-thread="{thread_id}"' in client.get(url).content.decode()


def _row_status(client, thread_id: int, key: str) -> int:
    return client.get(reverse("thread_row", args=[thread_id]), {"label": key}).status_code


def test_starred_then_trashed_leaves_starred(client, mailbox):
    thread, kept = _thread(mailbox, "s"), _thread(mailbox, "k")
    client.force_login(mailbox.user)
    threads_action_apply(mailbox=mailbox, action="star", thread_ids=[thread, kept])
    assert _listed(client, reverse("starred"), thread)

    threads_action_apply(mailbox=mailbox, action="trash", thread_ids=[thread])

    assert not _listed(client, reverse("starred"), thread)
    assert _listed(client, reverse("starred"), kept)
    assert _row_status(client, thread, "starred") == 204
    assert _row_status(client, kept, "starred") == 200


@pytest.mark.parametrize("action", ["spam", "trash"])
def test_labelled_then_reported_or_trashed_leaves_the_label(client, mailbox, action):
    thread, kept = _thread(mailbox, "l"), _thread(mailbox, "k")
    work = user_label_create(mailbox=mailbox, name="Work")
    client.force_login(mailbox.user)
    threads_action_apply(mailbox=mailbox, action="add_label", thread_ids=[thread, kept], label=work)
    assert selectors.label_unread_counts(mailbox=mailbox)[work.id] == 2

    threads_action_apply(mailbox=mailbox, action=action, thread_ids=[thread])

    page = reverse("label", args=[work.id])
    assert not _listed(client, page, thread)
    assert _listed(client, page, kept)
    assert _row_status(client, thread, str(work.id)) == 204


def test_a_conversation_with_your_reply_reported_as_spam_leaves_sent(client, mailbox):
    thread, kept = _thread(mailbox, "p"), _thread(mailbox, "k")
    for original, key in ((thread, "p"), (kept, "k")):
        raw = raw_message(f"{key}-re@x", f"Re: Subject {key}", in_reply_to=f"{key}@x", sender=mailbox.address)
        assert (
            message_import_raw(mailbox=mailbox, raw=raw, source_tag="t", label_roles=("sent",)).message.thread_id
            == original
        )
    sent = Label.objects.get(mailbox=mailbox, role=Label.Role.SENT)
    client.force_login(mailbox.user)

    threads_action_apply(mailbox=mailbox, action="spam", thread_ids=[thread])

    # Your reply keeps its Sent label (Not spam brings the thread back there), but Sent hides it.
    assert MessageLabel.objects.filter(mailbox=mailbox, label=sent, message__thread_id=thread).exists()
    page = reverse("label", args=[sent.id])
    assert not _listed(client, page, thread)
    assert _listed(client, page, kept)
    assert _row_status(client, thread, str(sent.id)) == 204
    sent_list = selectors.ThreadListView(kind="label", label=sent)
    assert selectors.thread_neighbours(mailbox=mailbox, view=sent_list, thread_id=kept).newer is None  # j/k skip it
    threads_action_apply(mailbox=mailbox, action="not_spam", thread_ids=[thread])
    assert _listed(client, page, thread)


def test_restore_brings_back_sent_replies_to_sent_and_the_user_labels(client, mailbox):
    thread = _thread(mailbox, "r")
    reply_raw = raw_message("r-reply@x", "Re: Subject r", in_reply_to="r@x", sender="Alice <alice@example.test>")
    reply = message_import_raw(mailbox=mailbox, raw=reply_raw, source_tag="t", label_roles=("sent",)).message
    assert reply.thread_id == thread
    work = user_label_create(mailbox=mailbox, name="Work")
    threads_action_apply(mailbox=mailbox, action="add_label", thread_ids=[thread], label=work)
    client.force_login(mailbox.user)

    client.post(reverse("threads_action"), {"action": "trash", "thread": [thread], "next": "/"})
    client.post(reverse("threads_action"), {"action": "restore", "thread": [thread], "next": "/"})

    def roles(message: Message) -> set[str]:
        links = MessageLabel.objects.filter(mailbox=mailbox, message=message)
        return {role or name for role, name in links.values_list("label__role", "label__name")}

    original = Message.objects.get(mailbox=mailbox, message_id="r@x")
    assert roles(original) == {Label.Role.INBOX, "Work"}
    assert roles(reply) == {Label.Role.SENT, "Work"}
    assert _listed(client, reverse("label", args=[work.id]), thread)
