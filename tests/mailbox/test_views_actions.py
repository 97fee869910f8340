"""Bulk actions on selected threads, each scoped to the user's mailbox, and their exact undo."""

import pytest
from django.urls import reverse

from mailbox.models import Label, Message, MessageLabel, ThreadLabel
from mailbox.selectors import live_cursor
from mailbox.services import message_import_raw, messages_mark_read
from mailbox.services.bulk import Undo, messages_state, threads_action_apply, undo_apply
from mailbox.services.conversations import thread_drift_find
from mailbox.services.preferences import user_label_create
from tests.mail import raw_message
from threads.models import Thread


def _thread(mailbox, key: str, *, replies: int = 0, roles=(Label.Role.INBOX,)) -> Thread:
    first = message_import_raw(
        mailbox=mailbox, raw=raw_message(f"{key}@x", f"Subject {key}"), source_tag="t", label_roles=roles
    ).message
    for n in range(replies):
        raw = raw_message(f"{key}-{n}@x", f"Re: Subject {key}", in_reply_to=f"{key}@x")
        message_import_raw(mailbox=mailbox, raw=raw, source_tag="t", label_roles=roles)
    return Thread.objects.get(pk=first.thread_id)


def _labels_of(thread: Thread) -> set[str]:
    return set(ThreadLabel.objects.filter(thread=thread).values_list("label__name", flat=True))


def _post(client, **fields):
    return client.post(reverse("threads_action"), {"next": "/", **fields})


def _consistent(mailbox) -> None:
    threads = Thread.objects.filter(mailbox_id=mailbox.id).values_list("id", flat=True)
    assert thread_drift_find(mailbox_id=mailbox.id, thread_ids=threads) == []


@pytest.mark.django_db
def test_archive_takes_the_selected_threads_out_of_the_inbox_and_undo_puts_them_back(client, mailbox):
    one, two, kept = (_thread(mailbox, k, replies=1) for k in ("a", "b", "c"))
    client.force_login(mailbox.user)

    response = _post(client, action="archive", thread=[one.id, two.id])

    assert response.status_code == 302
    assert response.url == "/"
    assert _labels_of(one) == _labels_of(two) == set()
    assert _labels_of(kept) == {"Inbox"}
    page = client.get("/").content.decode()
    assert "Archived." in page
    assert 'action="/undo/"' in page

    client.post(reverse("undo"), {"next": "/"})
    assert _labels_of(one) == _labels_of(two) == {"Inbox"}
    _consistent(mailbox)
    assert "Nothing to undo." in client.post(reverse("undo"), {"next": "/"}, follow=True).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("trash", {"Trash"}),
        ("spam", {"Spam"}),
        ("read", {"Inbox"}),
        ("unread", {"Inbox"}),
        ("star", {"Inbox"}),
    ],
)
def test_each_action_is_undone_exactly(mailbox, action, expected):
    thread = _thread(mailbox, "x", replies=2)
    first = Message.objects.filter(thread_id=thread.id).order_by("id").first()
    messages_mark_read(mailbox=mailbox, message_ids=[first.id])
    ids = list(Message.objects.filter(thread_id=thread.id).values_list("id", flat=True))
    before = messages_state(mailbox=mailbox, message_ids=ids)

    result = threads_action_apply(mailbox=mailbox, action=action, thread_ids=[thread.id])

    assert _labels_of(thread) == expected
    assert result.undo is not None
    undo_apply(mailbox=mailbox, undo=Undo.from_json(result.undo.to_json()))
    assert messages_state(mailbox=mailbox, message_ids=ids) == before
    _consistent(mailbox)


@pytest.mark.django_db
def test_star_marks_the_latest_message_and_unstar_all(mailbox):
    thread = _thread(mailbox, "s", replies=2)
    threads_action_apply(mailbox=mailbox, action="star", thread_ids=[thread.id])
    latest = Message.objects.filter(thread_id=thread.id).order_by("-date", "-id").first()
    assert list(Message.objects.filter(thread_id=thread.id, is_starred=True)) == [latest]
    threads_action_apply(mailbox=mailbox, action="unstar", thread_ids=[thread.id])
    assert not Message.objects.filter(thread_id=thread.id, is_starred=True).exists()


@pytest.mark.django_db
def test_label_add_remove_and_move(mailbox):
    thread = _thread(mailbox, "l")
    work = user_label_create(mailbox=mailbox, name="Work")
    home = user_label_create(mailbox=mailbox, name="Home")
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)

    threads_action_apply(mailbox=mailbox, action="add_label", thread_ids=[thread.id], label=work)
    assert _labels_of(thread) == {"Inbox", "Work"}
    threads_action_apply(mailbox=mailbox, action="move", thread_ids=[thread.id], label=home, current=inbox)
    assert _labels_of(thread) == {"Work", "Home"}
    threads_action_apply(mailbox=mailbox, action="move", thread_ids=[thread.id], label=inbox, current=work)
    assert _labels_of(thread) == {"Home", "Inbox"}
    threads_action_apply(mailbox=mailbox, action="remove_label", thread_ids=[thread.id], label=home)
    assert _labels_of(thread) == {"Inbox"}
    _consistent(mailbox)


@pytest.mark.django_db
def test_trash_restore_delete_forever_and_empty_trash(client, mailbox):
    restored, deleted, emptied = (_thread(mailbox, k) for k in ("r", "d", "e"))
    client.force_login(mailbox.user)
    _post(client, action="trash", thread=[restored.id, deleted.id, emptied.id])
    _post(client, action="restore", thread=[restored.id])
    assert _labels_of(restored) == {"Inbox"}

    _post(client, action="delete_forever", thread=[deleted.id], confirm="1")
    assert not Thread.objects.filter(pk=deleted.id).exists()
    _post(client, action="empty_trash", confirm="1")
    assert not Thread.objects.filter(pk=emptied.id).exists()
    assert Thread.objects.filter(pk=restored.id).exists()
    assert not MessageLabel.objects.filter(mailbox=mailbox, label__role=Label.Role.TRASH).exists()
    _consistent(mailbox)


@pytest.mark.django_db
def test_delete_forever_without_confirm_only_asks(client, mailbox):
    doomed = _thread(mailbox, "d", replies=2, roles=(Label.Role.TRASH,))
    other = _thread(mailbox, "o", roles=(Label.Role.TRASH,))
    client.force_login(mailbox.user)
    trash = Label.objects.get(mailbox=mailbox, role=Label.Role.TRASH)
    back = reverse("label", args=[trash.id])

    response = client.post(
        reverse("threads_action"), {"action": "delete_forever", "thread": [doomed.id], "next": back, "current": "trash"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "1 conversation (3 messages) will be deleted forever. This cannot be undone." in page
    assert '<input type="hidden" name="confirm" value="1">' in page
    assert f'<input type="hidden" name="thread" value="{doomed.id}">' in page
    assert f'<input type="hidden" name="next" value="{back}">' in page
    assert f'<a href="{back}">Cancel</a>' in page
    assert Message.objects.filter(thread_id=doomed.id).count() == 3

    response = _post(client, action="delete_forever", thread=[doomed.id], confirm="1")
    assert response.status_code == 302
    assert not Thread.objects.filter(pk=doomed.id).exists()
    assert Thread.objects.filter(pk=other.id).exists()


@pytest.mark.django_db
def test_empty_trash_without_confirm_only_asks(client, mailbox):
    for key in ("a", "b"):
        _thread(mailbox, key, replies=1, roles=(Label.Role.TRASH,))
    kept = _thread(mailbox, "kept")
    client.force_login(mailbox.user)

    response = _post(client, action="empty_trash")
    assert response.status_code == 200
    assert "2 conversations (4 messages) will be deleted forever." in response.content.decode()
    assert Message.objects.filter(mailbox=mailbox).count() == 5

    _post(client, action="empty_trash", confirm="1")
    assert list(Message.objects.filter(mailbox=mailbox).values_list("thread_id", flat=True)) == [kept.id]


@pytest.mark.django_db
def test_an_unconfirmed_delete_asked_for_json_is_refused(client, mailbox):
    thread = _thread(mailbox, "t", roles=(Label.Role.TRASH,))
    client.force_login(mailbox.user)
    response = client.post(
        reverse("threads_action"), {"action": "delete_forever", "thread": [thread.id]}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Deleting forever needs a confirmation."
    assert Thread.objects.filter(pk=thread.id).exists()


@pytest.mark.django_db
def test_nothing_to_delete_goes_straight_back(client, mailbox):
    _thread(mailbox, "inbox")
    client.force_login(mailbox.user)
    response = _post(client, action="empty_trash", next="/")
    assert (response.status_code, response.url) == (302, "/")
    assert Message.objects.filter(mailbox=mailbox).count() == 1


@pytest.mark.django_db
def test_not_spam_moves_back_to_the_inbox(client, mailbox):
    thread = _thread(mailbox, "junk", roles=(Label.Role.SPAM,))
    client.force_login(mailbox.user)
    _post(client, action="not_spam", thread=[thread.id])
    assert _labels_of(thread) == {"Inbox"}


@pytest.mark.django_db
def test_another_mailboxs_threads_are_never_touched(client, mailbox, other_mailbox):
    theirs = _thread(other_mailbox, "theirs")
    mine = _thread(mailbox, "mine")
    client.force_login(mailbox.user)

    for action in ("archive", "trash", "delete_forever", "read", "star", "spam"):
        _post(client, action=action, thread=[theirs.id], confirm="1")
    _post(client, action="empty_trash", confirm="1")

    assert _labels_of(theirs) == {"Inbox"}
    assert not Message.objects.filter(thread_id=theirs.id, is_read=True).exists()
    assert _labels_of(mine) == {"Inbox"}


@pytest.mark.django_db
def test_another_mailboxs_label_is_not_found(client, mailbox, other_mailbox):
    mine = _thread(mailbox, "mine")
    foreign = user_label_create(mailbox=other_mailbox, name="Theirs")
    client.force_login(mailbox.user)
    response = _post(client, action="add_label", thread=[mine.id], label=foreign.id)
    assert response.status_code == 404
    assert _labels_of(mine) == {"Inbox"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [
        {"action": "explode", "thread": ["1"]},
        {"action": "archive"},
        {"action": "archive", "thread": ["abc"]},
        {"action": "add_label", "thread": ["1"]},
        {"action": "archive", "thread": [str(n) for n in range(600)]},
    ],
)
def test_bad_requests_get_a_clear_message(client, mailbox, fields):
    client.force_login(mailbox.user)
    response = client.post(reverse("threads_action"), fields, follow=True)
    assert response.status_code == 200
    assert response.context["messages"]
    json_answer = client.post(reverse("threads_action"), fields, headers={"accept": "application/json"})
    assert json_answer.status_code == 400
    assert json_answer.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_next_never_leaves_the_site(client, mailbox, target):
    thread = _thread(mailbox, "n")
    client.force_login(mailbox.user)
    response = client.post(reverse("threads_action"), {"action": "read", "thread": [thread.id], "next": target})
    assert response.url == reverse("inbox")


@pytest.mark.django_db
def test_a_tampered_undo_record_is_refused_quietly(client, mailbox):
    client.force_login(mailbox.user)
    session = client.session
    session["mailbox_undo"] = {"action": "archive", "before": {"x": "y"}}
    session.save()
    assert "Nothing to undo." in client.post(reverse("undo"), follow=True).content.decode()


@pytest.mark.django_db
def test_undo_leaves_another_mailboxs_messages_alone(mailbox, other_mailbox):
    theirs = _thread(other_mailbox, "t")
    message = Message.objects.get(thread_id=theirs.id)
    forged = Undo(action="archive", before={message.id: (True, True, ())})
    assert undo_apply(mailbox=mailbox, undo=forged) == 0
    assert _labels_of(theirs) == {"Inbox"}


@pytest.mark.django_db(transaction=True)  # the catch-up's cursor tells committed transactions apart
def test_thread_row_and_events_since(client, mailbox, other_mailbox):
    cursor = live_cursor()
    thread = _thread(mailbox, "row")
    theirs = _thread(other_mailbox, "theirs")
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    client.force_login(mailbox.user)

    row = client.get(reverse("thread_row", args=[thread.id]), {"label": inbox.id})
    assert row.status_code == 200
    assert f'id="thread-{thread.id}"' in row.content.decode()
    assert row["X-Unread-Counts"] == f'{{"{inbox.id}": 1}}'
    trash = Label.objects.get(mailbox=mailbox, role=Label.Role.TRASH)
    assert client.get(reverse("thread_row", args=[thread.id]), {"label": trash.id}).status_code == 204
    assert client.get(reverse("thread_row", args=[theirs.id]), {"label": inbox.id}).status_code == 404
    assert client.get(reverse("thread_row", args=[thread.id]), {"label": "nope"}).status_code == 404

    answer = client.get(reverse("events_since"), {"after": cursor}).json()
    assert answer["threads"] == [thread.id]
    assert answer["complete"]
    assert client.get(reverse("events_since"), {"after": answer["latest"]}).json()["threads"] == []
    # "0" too: the script sends it when its page gave no cursor, and a reload would not help.
    for bad in ("x", "0", "-1", "١٢", "0:0:", "5:3:", "3:10:12", "3:10:5,4", "3:10:" + "3," * 10_000 + "3"):
        assert client.get(reverse("events_since"), {"after": bad}).status_code == 400
    # A tab open since before the cursor was a snapshot sends an event id: it is told to reload.
    old_tab = client.get(reverse("events_since"), {"after": "1234"})
    assert (old_tab.status_code, old_tab.json()) == (200, {"complete": False})
