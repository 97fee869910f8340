"""Every list can move threads back to the Inbox: the Move menu always offers the Inbox and the
user labels (but the list's own), with or without user labels; Archive shows on the Inbox, label,
Starred, All mail and search lists."""

import re

import pytest
from django.urls import reverse

from mailbox.models import Label, ThreadLabel
from mailbox.services import message_import_raw
from mailbox.services.bulk import threads_action_apply
from mailbox.services.preferences import user_label_create
from tests.mail import raw_message

pytestmark = pytest.mark.django_db


def _archived_thread(mailbox) -> int:
    raw = raw_message("a@x", "Archived one")
    thread = message_import_raw(mailbox=mailbox, raw=raw, source_tag="t", label_roles=("inbox",)).message.thread_id
    threads_action_apply(mailbox=mailbox, action="archive", thread_ids=[thread])
    return thread


def _move_options(html: str) -> list[str]:
    menu = re.search(r'<select name="move_to" id="bulk-move">(.*?)</select>', html, re.S)
    assert menu is not None
    return re.findall(r"<option [^>]*>([^<]*)</option>", menu.group(1))


def test_all_mail_offers_move_to_inbox_and_the_post_puts_the_thread_back(client, mailbox):
    thread = _archived_thread(mailbox)
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    client.force_login(mailbox.user)

    page = client.get(reverse("all_mail")).content.decode()
    assert _move_options(page) == ["Inbox"]  # no user labels yet: still a way back
    assert 'value="archive"' in page

    data = {"action": "move", "thread": [thread], "move_to": inbox.id, "current": "all", "next": "/all/"}
    assert client.post(reverse("threads_action"), data).status_code == 302

    assert ThreadLabel.objects.filter(thread_id=thread, label=inbox).exists()
    assert f'data-thread="{thread}"' in client.get(reverse("inbox")).content.decode()


def test_a_label_list_moves_to_the_inbox_or_another_label_and_search_can_archive(client, mailbox):
    work = user_label_create(mailbox=mailbox, name="Work")
    user_label_create(mailbox=mailbox, name="Home")
    client.force_login(mailbox.user)

    label_page = client.get(reverse("label", args=[work.id])).content.decode()
    inbox_page = client.get(reverse("inbox")).content.decode()
    search_page = client.get(reverse("search"), {"q": "anything"}).content.decode()

    assert _move_options(label_page) == ["Inbox", "Home"]  # not Work, the list itself
    assert _move_options(inbox_page) == ["Work", "Home"]
    assert 'value="archive"' in label_page
    assert 'value="archive"' in search_page
    assert 'value="archive"' not in client.get(reverse("label", args=[_trash(mailbox)])).content.decode()


def _trash(mailbox) -> int:
    return Label.objects.get(mailbox=mailbox, role=Label.Role.TRASH).id


def test_the_live_label_menus_carry_the_move_targets(client, mailbox):
    user_label_create(mailbox=mailbox, name="Work")
    client.force_login(mailbox.user)

    html = client.get(reverse("labels_sidebar"), {"current": "all"}).content.decode()

    assert re.findall(r"<option [^>]*>([^<]*)</option>", html.split('<select name="move_to">')[1]) == ["Inbox", "Work"]


def _labels_of(mailbox, thread: int) -> set[str]:
    rows = ThreadLabel.objects.filter(mailbox=mailbox, thread_id=thread).select_related("label")
    return {row.label.role or row.label.name for row in rows}


@pytest.mark.parametrize("bin_action", ["trash", "spam"])
def test_moving_a_binned_thread_to_the_inbox_from_a_search_takes_it_out_of_the_bin(mailbox, bin_action):
    raw = raw_message("b@x", "Binned one")
    thread = message_import_raw(mailbox=mailbox, raw=raw, source_tag="t", label_roles=("inbox",)).message.thread_id
    threads_action_apply(mailbox=mailbox, action=bin_action, thread_ids=[thread])
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)

    # A search (in:anywhere) has no list of its own: ``current`` is none.
    threads_action_apply(mailbox=mailbox, action="move", thread_ids=[thread], label=inbox, current=None)

    assert _labels_of(mailbox, thread) == {"inbox"}  # never in the Inbox and the bin at once


def test_moving_from_trash_to_the_inbox_restores_own_messages_to_sent(mailbox):
    raw = raw_message("t@x", "Trashed one")
    thread = message_import_raw(mailbox=mailbox, raw=raw, source_tag="t", label_roles=("inbox",)).message.thread_id
    own = raw_message("t-reply@x", "Re: Trashed one", in_reply_to="t@x", sender=f"Me <{mailbox.address}>")
    message_import_raw(mailbox=mailbox, raw=own, source_tag="t", label_roles=("sent",))
    threads_action_apply(mailbox=mailbox, action="trash", thread_ids=[thread])
    inbox, trash = (Label.objects.get(mailbox=mailbox, role=r) for r in (Label.Role.INBOX, Label.Role.TRASH))

    threads_action_apply(mailbox=mailbox, action="move", thread_ids=[thread], label=inbox, current=trash)

    assert _labels_of(mailbox, thread) == {"inbox", "sent"}
    sent_only = ThreadLabel.objects.get(mailbox=mailbox, thread_id=thread, label__role=Label.Role.SENT)
    inbox_row = ThreadLabel.objects.get(mailbox=mailbox, thread_id=thread, label=inbox)
    assert (inbox_row.message_count, sent_only.message_count) == (1, 1)  # the reply went back to Sent only
