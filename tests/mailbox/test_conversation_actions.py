"""The conversation page's thread actions: the list's actions, chosen by the thread's state, label
chips with remove, the way back to the list it was opened from, and undo — through the test client,
posting exactly what the page's forms hold."""

from html import escape
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from django.urls import reverse

from mailbox.models import Label, Message, ThreadLabel
from mailbox.services import message_import_raw, messages_label_add, messages_star, messages_trash
from mailbox.services.bulk import threads_action_apply
from mailbox.services.preferences import user_label_create
from mailbox.views_conversation import REFRESH_HEADER
from tests.mailbox.conversation_mail import conversation_message
from threads.models import Thread

pytestmark = pytest.mark.django_db


class _Forms(HTMLParser):
    """The page's forms: each one's attributes, its fields and its submit buttons (by label)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.by_id: dict[str, dict] = {}
        self._open: dict | None = None
        self._button: tuple[dict, dict] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self._open = {"attrs": a, "fields": [], "buttons": {}}
            self.forms.append(self._open)
            if "id" in a:
                self.by_id[a["id"]] = self._open
        elif tag in ("input", "select") and self._open is not None and a.get("type") != "checkbox":
            self._open["fields"].append([a.get("name"), a.get("value", ""), tag])
        elif tag == "option" and self._open is not None and self._open["fields"][-1][2] == "select":
            if self._open["fields"][-1][1] == "":
                self._open["fields"][-1][1] = a.get("value", "")
        elif tag == "button" and a.get("type") != "button":
            owner = self.by_id.get(a["form"]) if "form" in a else self._open
            if owner is not None:
                self._button = (owner, a)
                self._text = ""

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None
        elif tag == "button" and self._button is not None:
            owner, a = self._button
            key = a.get("aria-label") or self._text.strip()
            owner["buttons"][key] = (a.get("name"), a.get("value"))
            self._button = None


def _page(client, thread_id: int, back: str = "") -> tuple[str, _Forms]:
    url = reverse("thread_detail", args=[thread_id]) + (f"?back={quote(back, safe='/')}" if back else "")
    response = client.get(url)
    assert response.status_code == 200
    forms = _Forms()
    html = response.content.decode()
    forms.feed(html)
    return html, forms


def _press(client, forms: _Forms, button: str, **choose: str):
    """Submit the form holding ``button`` as a browser would, ``choose`` picking select options."""
    form = next(f for f in forms.forms if button in f["buttons"])
    data: dict[str, list[str]] = {}
    for name, value, tag in form["fields"]:
        data.setdefault(name, []).append(choose.get(name, value) if tag == "select" else value)
    name, value = form["buttons"][button]
    if name:
        data.setdefault(name, []).append(value)
    return client.post(form["attrs"]["action"], data)


def _buttons(forms: _Forms) -> set[str]:
    return {b for f in forms.forms for b in f["buttons"]}


def _deliver(mailbox, thread: str = "conv") -> Message:
    raw = conversation_message(0, to=mailbox.address, thread=thread)
    return message_import_raw(mailbox=mailbox, raw=raw, source_tag="test").message


def _roles(thread_id: int) -> set[str]:
    return set(ThreadLabel.objects.filter(thread_id=thread_id).values_list("label__role", flat=True))


def _label_ids(thread_id: int) -> set[int]:
    return set(ThreadLabel.objects.filter(thread_id=thread_id).values_list("label_id", flat=True))


def _label(mailbox, role: str) -> Label:
    return Label.objects.get(mailbox=mailbox, role=role)


def test_inbox_thread_offers_the_mail_actions_and_star_turns_into_unstar(client, mailbox):
    message = _deliver(mailbox)
    client.force_login(mailbox.user)

    _, forms = _page(client, message.thread_id)
    assert {"Archive", "Report spam", "Delete", "Mark unread", "Star"} <= _buttons(forms)
    assert not {"Unstar", "Restore", "Not spam", "Delete forever"} & _buttons(forms)

    response = _press(client, forms, "Star")
    assert response.status_code == 302
    assert response["Location"] == reverse("thread_detail", args=[message.thread_id])  # starring stays
    assert Thread.objects.get(pk=message.thread_id).starred_count == 1

    _, forms = _page(client, message.thread_id)
    assert "Unstar" in _buttons(forms)
    assert "Star" not in _buttons(forms)
    _press(client, forms, "Unstar")
    assert Thread.objects.get(pk=message.thread_id).starred_count == 0


def test_trash_offers_restore_and_delete_forever(client, mailbox):
    message = _deliver(mailbox)
    messages_trash(mailbox=mailbox, message_ids=[message.id])
    client.force_login(mailbox.user)
    trash = _label(mailbox, Label.Role.TRASH)

    _, forms = _page(client, message.thread_id, back=reverse("label", args=[trash.id]))
    assert {"Restore", "Delete forever"} <= _buttons(forms)
    assert not {"Archive", "Delete", "Report spam", "Not spam"} & _buttons(forms)

    response = _press(client, forms, "Restore")
    assert response["Location"] == reverse("label", args=[trash.id])  # back to the Trash
    assert _roles(message.thread_id) == {Label.Role.INBOX}

    messages_trash(mailbox=mailbox, message_ids=[message.id])
    trash_url = reverse("label", args=[trash.id])
    _, forms = _page(client, message.thread_id, back=trash_url)
    confirmation = _press(client, forms, "Delete forever")
    assert Message.objects.filter(pk=message.id).exists()  # not before it is confirmed
    forms = _Forms()
    forms.feed(confirmation.content.decode())
    assert "1 conversation (1 message) will be deleted forever." in confirmation.content.decode()
    # Cancel goes back to the conversation it was asked from; the deletion goes on to the list.
    conversation = reverse("thread_detail", args=[message.thread_id]) + "?back=" + quote(trash_url, safe="/")
    assert f'<a href="{escape(conversation)}">Cancel</a>' in confirmation.content.decode()
    response = _press(client, forms, "Delete forever")
    assert response["Location"] == reverse("label", args=[trash.id])
    assert not Message.objects.filter(pk=message.id).exists()


def test_actions_work_from_a_conversation_opened_from_a_long_list_url(client, mailbox):
    message = _deliver(mailbox)
    client.force_login(mailbox.user)
    long_list = "/search/?q=" + "x" * 1980  # as long as a list URL may be (MAX_BACK_LENGTH)

    _, forms = _page(client, message.thread_id, back=long_list)
    response = _press(client, forms, "Archive")

    assert response.status_code == 302
    assert Label.Role.INBOX not in _roles(message.thread_id)


def test_spam_offers_not_spam(client, mailbox):
    message = _deliver(mailbox)
    threads_action_apply(mailbox=mailbox, action="spam", thread_ids=[message.thread_id])
    client.force_login(mailbox.user)

    _, forms = _page(client, message.thread_id)  # opened from a search, say: no list named
    assert {"Not spam", "Delete forever"} <= _buttons(forms)
    assert not {"Archive", "Report spam", "Restore"} & _buttons(forms)

    response = _press(client, forms, "Not spam")
    assert response["Location"] == reverse("inbox")
    assert _roles(message.thread_id) == {Label.Role.INBOX}


def test_a_thread_back_in_the_inbox_from_trash_gets_the_mail_actions_unless_opened_from_trash(client, mailbox):
    first = _deliver(mailbox)
    messages_trash(mailbox=mailbox, message_ids=[first.id])
    reply = message_import_raw(
        mailbox=mailbox, raw=conversation_message(1, to=mailbox.address), source_tag="test"
    ).message  # a reply brings the conversation back to the Inbox
    assert reply.thread_id == first.thread_id
    trash = _label(mailbox, Label.Role.TRASH)
    client.force_login(mailbox.user)

    assert "Archive" in _buttons(_page(client, first.thread_id)[1])
    assert "Restore" in _buttons(_page(client, first.thread_id, back=reverse("label", args=[trash.id]))[1])


def test_label_chips_add_and_remove(client, mailbox):
    message = _deliver(mailbox)
    work = user_label_create(mailbox=mailbox, name="Work", colour="#188038")
    home = user_label_create(mailbox=mailbox, name="Home", colour="")
    messages_label_add(mailbox=mailbox, message_ids=[message.id], label=work)
    client.force_login(mailbox.user)
    here = reverse("thread_detail", args=[message.thread_id])

    html, forms = _page(client, message.thread_id)
    assert f'class="label-chip chip-188038" data-label="{work.id}">Work' in html
    assert f'data-label="{home.id}"' not in html
    response = _press(client, forms, "Apply label", label=str(home.id))  # only labels not on it are offered
    assert response["Location"] == here
    assert {work.id, home.id} <= _label_ids(message.thread_id)

    html, forms = _page(client, message.thread_id)
    assert "Apply label" not in _buttons(forms)  # every label is on it
    response = _press(client, forms, "Remove label Work")
    assert response["Location"] == here
    labels = _label_ids(message.thread_id)
    assert work.id not in labels
    assert home.id in labels


def test_back_link_and_leaving_actions_go_to_the_list_it_was_opened_from(client, mailbox):
    message = _deliver(mailbox)
    work = user_label_create(mailbox=mailbox, name="Work", colour="")
    messages_label_add(mailbox=mailbox, message_ids=[message.id], label=work)
    client.force_login(mailbox.user)
    back = reverse("label", args=[work.id]) + "?older=abc"

    html, forms = _page(client, message.thread_id, back=back)
    assert f'<a class="back" href="{back}" data-key="u">← Work</a>' in html
    response = _press(client, forms, "Mark unread")
    assert response["Location"] == back

    for where, name in ((reverse("starred"), "Starred"), (reverse("search") + "?q=plans&x=1", "Search results")):
        html, _ = _page(client, message.thread_id, back=where)
        assert f'href="{where.replace("&", "&amp;")}" data-key="u">← {name}</a>' in html


@pytest.mark.parametrize(
    "unsafe",
    ["https://evil.example/", "//evil.example/", "/\\evil.example/", "javascript:alert(1)", "evil", "/a\nb", ""],
)
def test_only_a_local_path_is_a_way_back(client, mailbox, unsafe):
    message = _deliver(mailbox)
    client.force_login(mailbox.user)
    url = reverse("thread_detail", args=[message.thread_id])

    html = client.get(url, {"back": unsafe}).content.decode()

    assert '<a class="back" href="/" data-key="u">← Inbox</a>' in html
    assert "evil" not in html
    assert '<input type="hidden" name="next" value="/">' in html


def test_a_path_that_is_no_list_is_a_plain_back_link(client, mailbox):
    message = _deliver(mailbox)
    client.force_login(mailbox.user)

    html, forms = _page(client, message.thread_id, back=reverse("drafts"))

    assert f'<a class="back" href="{reverse("drafts")}" data-key="u">← Back</a>' in html
    assert _press(client, forms, "Archive")["Location"] == reverse("drafts")
    assert Label.Role.INBOX not in _roles(message.thread_id)


def test_move_takes_the_thread_out_of_the_list_it_came_from(client, mailbox):
    message = _deliver(mailbox)
    work = user_label_create(mailbox=mailbox, name="Work", colour="")
    home = user_label_create(mailbox=mailbox, name="Home", colour="")
    messages_label_add(mailbox=mailbox, message_ids=[message.id], label=work)
    client.force_login(mailbox.user)

    html, forms = _page(client, message.thread_id, back=reverse("label", args=[work.id]))
    move = next(f for f in forms.forms if "Move to" in f["buttons"])
    assert [value for name, value, _ in move["fields"] if name == "current"] == [str(work.id)]
    assert f'<option value="{work.id}">' not in html.split('id="thread-move"')[1].split("</select>")[0]
    _press(client, forms, "Move to", label=str(home.id))

    labels = _label_ids(message.thread_id)
    assert work.id not in labels  # out of Work, where it was opened from
    assert home.id in labels
    assert Label.Role.INBOX in _roles(message.thread_id)  # the Inbox was not the list it came from


def test_an_archived_thread_can_be_moved_back_to_the_inbox(client, mailbox):
    message = _deliver(mailbox)
    work = user_label_create(mailbox=mailbox, name="Work", colour="")
    threads_action_apply(mailbox=mailbox, action="archive", thread_ids=[message.thread_id])
    messages_label_add(mailbox=mailbox, message_ids=[message.id], label=work)
    inbox = _label(mailbox, Label.Role.INBOX)
    client.force_login(mailbox.user)

    html, forms = _page(client, message.thread_id, back=reverse("all_mail"))
    assert "Archive" not in _buttons(forms)
    assert f'<option value="{inbox.id}">Inbox</option>' in html
    response = _press(client, forms, "Move to", label=str(inbox.id))

    assert response["Location"] == reverse("all_mail")
    assert Label.Role.INBOX in _roles(message.thread_id)


def test_undo_on_the_conversation_puts_things_back_and_stays(client, mailbox):
    message = _deliver(mailbox)
    client.force_login(mailbox.user)
    back = reverse("starred")
    here = reverse("thread_detail", args=[message.thread_id]) + f"?back={quote(back, safe='/')}"

    html, forms = _page(client, message.thread_id, back=back)
    assert "Undo" not in _buttons(forms)
    assert _press(client, forms, "Star")["Location"] == here
    html, forms = _page(client, message.thread_id, back=back)
    assert '<span role="status">Starred.</span>' in html
    response = _press(client, forms, "Undo")

    assert response["Location"] == here
    assert Thread.objects.get(pk=message.thread_id).starred_count == 0
    # Left for the list: the list's own undo bar undoes it.
    html, forms = _page(client, message.thread_id, back=back)
    assert _press(client, forms, "Archive")["Location"] == back
    assert "Archived." in client.get(back).content.decode()


def test_a_live_refresh_of_the_page_leaves_the_undo_notice_to_the_page_the_action_leads_to(client, mailbox):
    """The page being left can hear the action's live event and fetch itself (conversation.js)
    before the browser follows the action's redirect: that fetch must not take the notice."""
    message = _deliver(mailbox)
    client.force_login(mailbox.user)
    _, forms = _page(client, message.thread_id)
    _press(client, forms, "Star")

    refreshed = client.get(reverse("thread_detail", args=[message.thread_id]), headers={REFRESH_HEADER: "1"})
    html, _ = _page(client, message.thread_id)

    assert refreshed.status_code == 200
    assert '<span role="status">Starred.</span>' in html
    assert '<span role="status">Starred.</span>' not in _page(client, message.thread_id)[0]  # shown once


def test_list_rows_link_to_their_conversation_with_the_way_back(client, mailbox):
    message = _deliver(mailbox)
    work = user_label_create(mailbox=mailbox, name="Work", colour="")
    messages_label_add(mailbox=mailbox, message_ids=[message.id], label=work)
    messages_star(mailbox=mailbox, message_ids=[message.id], is_starred=True)
    client.force_login(mailbox.user)
    detail = reverse("thread_detail", args=[message.thread_id])

    assert f'href="{detail}"' in client.get(reverse("inbox")).content.decode()  # the Inbox is the default
    work_page = client.get(reverse("label", args=[work.id])).content.decode()
    assert f'href="{detail}?back=/label/{work.id}/"' in work_page
    search = client.get(reverse("search"), {"q": "quarterly"}).content.decode()
    assert f'href="{detail}?back=/search/%3Fq%3Dquarterly"' in search
    row = reverse("thread_row", args=[message.thread_id])
    live = client.get(row, {"label": str(work.id), "back": f"/label/{work.id}/"}).content.decode()
    assert f'href="{detail}?back=/label/{work.id}/"' in live
    assert f'href="{detail}"' in client.get(row, {"label": "starred", "back": "//evil.example/"}).content.decode()
