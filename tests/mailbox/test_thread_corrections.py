"""The user's corrections to conversations through the pages: split a message off from the
conversation view, merge conversations from a list, and why each message is where it is."""

import pytest
from django.urls import reverse

from mailbox.models import MergedThread, Message
from mailbox.services import message_split_off, messages_delete, messages_move_to_thread, thread_merge
from mailsite.models import DomainEvent
from tests.threads.builders import assert_no_drift, deliver, published_capture, reply, thread_of
from threads.models import Thread

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    return published_capture(monkeypatch)


def _conversation(mailbox):
    """a ← b ← c, each a full-header reply to the one before."""
    a = deliver(mailbox, "a@x", "Budget 2027", date="Mon, 02 Nov 2026 10:00:00 +0000")
    b = reply(mailbox, "b@x", a, sender="Dave <dave@example.org>", date="Mon, 02 Nov 2026 11:00:00 +0000")
    c = reply(mailbox, "c@x", b, date="Mon, 02 Nov 2026 12:00:00 +0000")
    return a, b, c


# --- Split --------------------------------------------------------------------------------------


def test_each_message_of_a_conversation_offers_a_split_form(client, mailbox):
    a, b, c = _conversation(mailbox)
    client.force_login(mailbox.user)

    html = client.get(reverse("thread_detail", args=[a.thread_id])).content.decode()

    for message in (a, b, c):
        assert f'action="{reverse("message_split", args=[message.id])}"' in html
    assert html.count("Split into a new conversation") == 3
    assert html.count('name="csrfmiddlewaretoken"') >= 3


def test_a_single_message_conversation_offers_no_split(client, mailbox):
    alone = deliver(mailbox, "alone@x", "Alone")
    client.force_login(mailbox.user)

    html = client.get(reverse("thread_detail", args=[alone.thread_id])).content.decode()

    assert "Split into a new conversation" not in html


def test_splitting_lands_on_the_new_conversation_and_the_old_one_stays_correct(client, mailbox):
    a, b, c = _conversation(mailbox)
    source = a.thread_id
    client.force_login(mailbox.user)

    response = client.post(reverse("message_split", args=[b.id]))

    b.refresh_from_db()
    assert b.thread_id != source
    assert response.status_code == 302
    assert response.url == reverse("thread_detail", args=[b.thread_id])
    page = client.get(response.url).content.decode()
    assert "Split into a new conversation." in page
    assert "You put it here: split, merged or moved by hand." in page
    old = Thread.objects.get(pk=source)
    assert (old.message_count, thread_of(b).message_count) == (2, 1)
    old_page = client.get(reverse("thread_detail", args=[source])).content.decode()
    assert f'id="m-{b.id}"' not in old_page
    assert f'id="m-{a.id}"' in old_page
    assert f'id="m-{c.id}"' in old_page
    assert_no_drift(mailbox)


def test_a_reply_to_the_split_off_message_follows_it_not_the_old_conversation(client, mailbox):
    """The user's split wins over the resolver: the reply's References name a (old conversation)
    as well as b (split off), and it joins b's; a reply to c stays in the old one."""
    a, b, c = _conversation(mailbox)
    client.force_login(mailbox.user)
    client.post(reverse("message_split", args=[b.id]))
    split = thread_of(b)

    to_b = reply(mailbox, "to-b@x", Message.objects.get(pk=b.pk), date="Tue, 03 Nov 2026 09:00:00 +0000")
    to_c = reply(mailbox, "to-c@x", Message.objects.get(pk=c.pk), date="Tue, 03 Nov 2026 09:05:00 +0000")

    assert to_b.thread_id == split.pk
    assert to_c.thread_id == a.thread_id
    assert Thread.objects.filter(pk=split.pk, is_manual=True).exists()
    assert_no_drift(mailbox)


def test_a_late_child_of_a_split_message_cannot_pull_it_back(mailbox):
    """A message whose References connect the split-off thread and the old one merges nothing:
    threads the user split are never merged automatically."""
    a, b, _c = _conversation(mailbox)
    split = message_split_off(mailbox=mailbox, message_id=b.id)
    # Names c (old conversation) nearest, then b: headers of a reply in a forked discussion.
    both = deliver(mailbox, "both@x", "Re: Budget 2027", in_reply_to="c@x", references=("a@x", "b@x", "c@x"))

    assert Thread.objects.filter(pk=split.pk).exists()
    assert both.thread_id == a.thread_id
    assert Message.objects.get(pk=b.pk).thread_id == split.pk
    assert_no_drift(mailbox)


def test_splitting_the_only_message_is_refused_with_a_message(client, mailbox):
    alone = deliver(mailbox, "alone@x", "Alone")
    client.force_login(mailbox.user)

    response = client.post(reverse("message_split", args=[alone.id]), follow=True)

    assert "This message is already a conversation of its own." in response.content.decode()
    assert Message.objects.get(pk=alone.pk).thread_id == alone.thread_id


def test_splitting_another_users_message_is_404_and_changes_nothing(client, mailbox, other_mailbox):
    a, b, _c = _conversation(mailbox)
    client.force_login(other_mailbox.user)

    assert client.post(reverse("message_split", args=[b.id])).status_code == 404
    assert client.get(reverse("message_split", args=[b.id])).status_code == 405
    assert Message.objects.get(pk=b.pk).thread_id == a.thread_id


# --- Merge --------------------------------------------------------------------------------------


def _merge(client, **fields):
    return client.post(reverse("threads_merge"), {"next": "/", **fields})


def test_merge_asks_which_conversation_to_keep_with_the_newest_chosen(client, mailbox):
    old = deliver(mailbox, "old@x", "Old plans", date="Mon, 02 Nov 2026 10:00:00 +0000")
    new = deliver(mailbox, "new@x", "New plans", date="Tue, 03 Nov 2026 10:00:00 +0000")
    client.force_login(mailbox.user)

    response = _merge(client, thread=[old.thread_id, new.thread_id])

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<input type="radio" name="into" value="{new.thread_id}" checked>' in html
    assert f'<input type="radio" name="into" value="{old.thread_id}">' in html
    assert html.index("New plans") < html.index("Old plans")
    assert Thread.objects.filter(mailbox_id=mailbox.id).count() == 2  # nothing merged yet


def test_merging_keeps_the_chosen_conversation_and_goes_back_to_the_list(
    client, mailbox, published, django_capture_on_commit_callbacks
):
    old = deliver(mailbox, "old@x", "Old plans", date="Mon, 02 Nov 2026 10:00:00 +0000")
    new = deliver(mailbox, "new@x", "New plans", date="Tue, 03 Nov 2026 10:00:00 +0000")
    third = deliver(mailbox, "third@x", "Third", date="Wed, 04 Nov 2026 10:00:00 +0000")
    client.force_login(mailbox.user)

    with django_capture_on_commit_callbacks(execute=True):
        response = _merge(client, thread=[old.thread_id, new.thread_id, third.thread_id], into=old.thread_id)

    assert (response.status_code, response.url) == (302, "/")
    kept = Thread.objects.get(pk=old.thread_id)
    assert kept.message_count == 3
    assert list(Thread.objects.filter(mailbox_id=mailbox.id).values_list("pk", flat=True)) == [kept.pk]
    page = client.get("/").content.decode()
    assert "Merged 3 conversations into “Old plans”." in page
    removed = [e for e in published if e["type"] == "thread.removed"]
    assert sorted(e["thread_id"] for e in removed) == sorted([new.thread_id, third.thread_id])
    assert {e["merged_into"] for e in removed} == {kept.pk}
    assert DomainEvent.objects.filter(event_type=DomainEvent.Type.THREAD_MERGED, subject_id=kept.pk).exists()
    later = reply(mailbox, "later@x", Message.objects.get(pk=third.pk))
    assert later.thread_id == kept.pk  # replies to a merged-in message follow the merge
    detail = client.get(reverse("thread_detail", args=[kept.pk])).content.decode()
    assert detail.count("You put it here: split, merged or moved by hand.") == 2  # the two merged in
    assert_no_drift(mailbox)


@pytest.mark.parametrize(
    ("selected", "error"),
    [
        (lambda own: [own], "Select two or more conversations to merge."),
        (lambda own: [own, own], "Select two or more conversations to merge."),
        (lambda own: [], "Select two or more conversations to merge."),
        (lambda own: ["x", own], "Those conversations could not be read."),
    ],
)
def test_merge_refuses_fewer_than_two_or_unreadable_ids(client, mailbox, selected, error):
    own = deliver(mailbox, "own@x", "Own").thread_id
    client.force_login(mailbox.user)

    response = client.post(reverse("threads_merge"), {"next": "/", "thread": selected(own)}, follow=True)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert Thread.objects.filter(pk=own).exists()


def test_merge_into_a_conversation_not_selected_is_refused(client, mailbox):
    one, two, three = (deliver(mailbox, f"{k}@x", f"Subject {k}") for k in "abc")
    client.force_login(mailbox.user)

    response = _merge(client, thread=[one.thread_id, two.thread_id], into=three.thread_id)

    assert response.status_code == 302
    assert Thread.objects.filter(mailbox_id=mailbox.id).count() == 3


def test_merging_another_users_conversations_is_404_and_changes_nothing(client, mailbox, other_mailbox):
    mine = deliver(mailbox, "mine@x", "Mine")
    theirs = [deliver(other_mailbox, f"t{n}@x", f"Theirs {n}", to="bob@example.test") for n in range(2)]
    client.force_login(mailbox.user)
    their_ids = [m.thread_id for m in theirs]

    assert _merge(client, thread=their_ids).status_code == 404
    assert _merge(client, thread=[mine.thread_id, their_ids[0]], into=mine.thread_id).status_code == 404
    assert _merge(client, thread=their_ids, into=their_ids[0]).status_code == 404
    assert Thread.objects.filter(pk__in=their_ids).count() == 2


# --- The address of a conversation merged away --------------------------------------------------


def test_a_merged_away_conversations_address_leads_to_the_one_it_was_merged_into(client, mailbox):
    old = deliver(mailbox, "old@x", "Old plans")
    new = deliver(mailbox, "new@x", "New plans")
    client.force_login(mailbox.user)
    _merge(client, thread=[old.thread_id, new.thread_id], into=new.thread_id)

    response = client.get(reverse("thread_detail", args=[old.thread_id]), {"open": old.id})

    assert response.status_code == 302
    assert response.url == reverse("thread_detail", args=[new.thread_id]) + f"?open={old.id}"
    page = client.get(response.url).content.decode()
    assert f'id="m-{old.id}"' in page


def test_a_conversation_merged_twice_leads_to_the_last_one_in_one_step(client, mailbox):
    first, second, third = (deliver(mailbox, f"{k}@x", f"Topic {k}") for k in "abc")
    thread_merge(mailbox=mailbox, thread_ids=[first.thread_id], into_thread_id=second.thread_id)
    thread_merge(mailbox=mailbox, thread_ids=[second.thread_id], into_thread_id=third.thread_id)
    client.force_login(mailbox.user)

    for gone in (first.thread_id, second.thread_id):
        response = client.get(reverse("thread_detail", args=[gone]))
        assert (response.status_code, response.url) == (302, reverse("thread_detail", args=[third.thread_id]))


def test_merges_by_the_resolver_and_emptying_moves_lead_on_too(client, mailbox):
    first = deliver(mailbox, "c@x", "Re: Budget", in_reply_to="b@x", references=("b@x",))
    second = deliver(mailbox, "a-reply@x", "Re: Budget", in_reply_to="a@x", references=("a@x",))
    late = deliver(mailbox, "b@x", "Re: Budget", in_reply_to="a@x", references=("a@x",))
    gone = ({first.thread_id, second.thread_id} - {late.thread_id}).pop()
    lone = deliver(mailbox, "lone@x", "Trip")
    messages_move_to_thread(mailbox=mailbox, message_ids=[lone.pk], thread_id=late.thread_id)
    client.force_login(mailbox.user)

    for old in (gone, lone.thread_id):
        response = client.get(reverse("thread_detail", args=[old]))
        assert (response.status_code, response.url) == (302, reverse("thread_detail", args=[late.thread_id]))


def test_a_merged_away_address_is_404_for_another_user_and_once_its_target_is_gone(client, mailbox, other_mailbox):
    old = deliver(mailbox, "old@x", "Old plans")
    new = deliver(mailbox, "new@x", "New plans")
    thread_merge(mailbox=mailbox, thread_ids=[old.thread_id], into_thread_id=new.thread_id)
    client.force_login(other_mailbox.user)

    assert client.get(reverse("thread_detail", args=[old.thread_id])).status_code == 404

    client.force_login(mailbox.user)
    messages_delete(mailbox=mailbox, message_ids=[old.pk, new.pk])  # forever: the conversation is gone
    assert client.get(reverse("thread_detail", args=[old.thread_id])).status_code == 404


def test_old_addresses_of_a_conversation_deleted_forever_are_forgotten(client, mailbox):
    """Thread ids are never reused, so such a row could only ever answer 404: it is deleted with
    the conversation it led to, and rows leading elsewhere stay."""
    first, second, third, other = (deliver(mailbox, f"{k}@x", f"Topic {k}") for k in "abcd")
    thread_merge(mailbox=mailbox, thread_ids=[first.thread_id], into_thread_id=second.thread_id)
    thread_merge(mailbox=mailbox, thread_ids=[second.thread_id], into_thread_id=third.thread_id)
    kept = deliver(mailbox, "kept@x", "Kept")
    thread_merge(mailbox=mailbox, thread_ids=[kept.thread_id], into_thread_id=other.thread_id)
    assert _old_addresses(mailbox) == {
        first.thread_id: third.thread_id,
        second.thread_id: third.thread_id,
        kept.thread_id: other.thread_id,
    }

    messages_delete(mailbox=mailbox, message_ids=[first.pk, second.pk, third.pk])

    assert _old_addresses(mailbox) == {kept.thread_id: other.thread_id}
    client.force_login(mailbox.user)
    assert client.get(reverse("thread_detail", args=[first.thread_id])).status_code == 404
    response = client.get(reverse("thread_detail", args=[kept.thread_id]))
    assert (response.status_code, response.url) == (302, reverse("thread_detail", args=[other.thread_id]))


def _old_addresses(mailbox) -> dict[int, int]:
    return dict(MergedThread.objects.filter(mailbox=mailbox).values_list("thread_id", "merged_into"))


def test_the_list_toolbar_offers_merge_outside_trash_and_spam(client, mailbox):
    deliver(mailbox, "a@x", "Anything")
    client.force_login(mailbox.user)

    inbox = client.get("/").content.decode()
    search = client.get(reverse("search"), {"q": "anything"}).content.decode()

    for page in (inbox, search):
        assert f'formaction="{reverse("threads_merge")}"' in page
