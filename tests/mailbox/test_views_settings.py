"""Labels (create, rename, colour, delete) and the settings page."""

import re

import pytest
from django.urls import reverse

from mailbox.models import Label, Mailbox, Message
from mailbox.selectors import live_cursor
from mailbox.services import message_import_raw
from mailbox.services.flags import messages_label_add
from mailbox.services.preferences import user_label_create, user_label_delete
from tests.mail import raw_message


@pytest.mark.django_db
def test_create_rename_recolour_and_delete_a_label(client, mailbox):
    client.force_login(mailbox.user)
    assert client.post(reverse("labels"), {"name": "  Receipts ", "colour": "#188038"}).status_code == 302
    label = Label.objects.get(mailbox=mailbox, name="Receipts")
    assert label.colour == "#188038"

    page = client.get(reverse("labels")).content.decode()
    assert "Receipts" in page
    assert f'for="id_l{label.id}-name"' in page
    client.post(
        reverse("label_edit", args=[label.id]), {f"l{label.id}-name": "Bills", f"l{label.id}-colour": "#d93025"}
    )
    label.refresh_from_db()
    assert (label.name, label.colour) == ("Bills", "#d93025")

    client.post(reverse("label_delete", args=[label.id]), {"confirm": "1"})
    assert not Label.objects.filter(pk=label.id).exists()


@pytest.mark.django_db
def test_deleting_a_label_asks_first_and_says_how_many_conversations_carry_it(client, mailbox):
    label = user_label_create(mailbox=mailbox, name="Receipts")
    raw = raw_message("r1@x", "Receipt", to=mailbox.address)
    message = message_import_raw(mailbox=mailbox, raw=raw, source_tag="test").message
    messages_label_add(mailbox=mailbox, message_ids=[message.id], label=label)
    client.force_login(mailbox.user)

    response = client.post(reverse("label_delete", args=[label.id]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Delete the label “Receipts”?" in page
    assert "It comes off 1 conversation; the conversations themselves stay." in page
    assert '<input type="hidden" name="confirm" value="1">' in page
    assert f'action="{reverse("label_delete", args=[label.id])}"' in page
    assert Label.objects.filter(pk=label.id).exists()

    response = client.post(reverse("label_delete", args=[label.id]), {"confirm": "1"})
    assert response.url == reverse("labels")
    assert not Label.objects.filter(pk=label.id).exists()
    assert Message.objects.filter(pk=message.id).exists()


@pytest.mark.django_db
def test_duplicate_names_and_bad_colours_are_refused_with_a_message(client, mailbox):
    user_label_create(mailbox=mailbox, name="Work")
    client.force_login(mailbox.user)
    response = client.post(reverse("labels"), {"name": "work", "colour": ""})
    assert response.status_code == 400
    assert "already a label called" in response.content.decode()
    assert client.post(reverse("labels"), {"name": "Other", "colour": "red; x"}).status_code == 400
    assert client.post(reverse("labels"), {"name": "   ", "colour": ""}).status_code == 400


@pytest.mark.django_db
def test_system_folders_cannot_be_renamed_or_deleted(client, mailbox):
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    client.force_login(mailbox.user)
    client.post(reverse("label_edit", args=[inbox.id]), {f"l{inbox.id}-name": "Mine", f"l{inbox.id}-colour": ""})
    response = client.post(reverse("label_delete", args=[inbox.id]), follow=True)
    inbox.refresh_from_db()
    assert inbox.name == "Inbox"
    assert "cannot be deleted" in response.content.decode()


@pytest.mark.django_db
def test_another_users_label_cannot_be_changed(client, mailbox, other_mailbox):
    theirs = user_label_create(mailbox=other_mailbox, name="Theirs")
    client.force_login(mailbox.user)
    fields = {f"l{theirs.id}-name": "Pwned", f"l{theirs.id}-colour": ""}
    assert client.post(reverse("label_edit", args=[theirs.id]), fields).status_code == 404
    assert client.post(reverse("label_delete", args=[theirs.id])).status_code == 404
    assert Label.objects.get(pk=theirs.id).name == "Theirs"


@pytest.mark.django_db
def test_settings_save_display_name_and_shortcuts(client, mailbox):
    client.force_login(mailbox.user)
    page = client.get(reverse("settings")).content.decode()
    assert 'for="id_display_name"' in page
    assert 'for="id_keyboard_shortcuts"' in page
    assert 'data-shortcuts="on"' in page

    client.post(reverse("settings"), {"display_name": " Alice  Liddell "})
    mailbox = Mailbox.objects.get(pk=mailbox.pk)
    assert mailbox.display_name == "Alice Liddell"
    assert mailbox.keyboard_shortcuts is False
    assert 'data-shortcuts="off"' in client.get(reverse("inbox")).content.decode()


@pytest.mark.django_db
def test_forms_need_a_csrf_token(mailbox):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(mailbox.user)
    for name in ("settings", "labels", "threads_action", "undo"):
        assert client.post(reverse(name), {}).status_code == 403, name


def test_settings_save_the_signature_and_the_remote_images_policy(client, mailbox):
    client.force_login(mailbox.user)
    page = client.get(reverse("settings")).content.decode()
    assert 'for="id_signature"' in page
    assert 'for="id_remote_images"' in page

    data = {"display_name": "Alice", "signature": "-- \r\nAlice", "remote_images": "always"}
    assert client.post(reverse("settings"), data).status_code == 302
    mailbox = Mailbox.objects.get(pk=mailbox.pk)
    assert (mailbox.signature, mailbox.remote_images) == ("-- \nAlice", Mailbox.RemoteImages.ALWAYS)

    assert client.post(reverse("settings"), {**data, "remote_images": "sometimes"}).status_code == 400
    assert Mailbox.objects.get(pk=mailbox.pk).remote_images == Mailbox.RemoteImages.ALWAYS


@pytest.mark.django_db(transaction=True)  # the catch-up's cursor tells committed transactions apart
def test_a_tab_that_missed_a_label_deletion_learns_it_when_catching_up(client, mailbox, other_mailbox):
    client.force_login(mailbox.user)
    after = live_cursor()
    gone = user_label_create(mailbox=mailbox, name="Gone")
    theirs = user_label_create(mailbox=other_mailbox, name="Theirs")
    user_label_delete(label=theirs)

    client.post(reverse("label_delete", args=[gone.id]), {"confirm": "1"})

    answer = client.get(reverse("events_since"), {"after": after}).json()
    assert answer["labels_deleted"] == [gone.id]
    assert answer["threads"] == []
    assert client.get(reverse("events_since"), {"after": answer["latest"]}).json()["labels_deleted"] == []


@pytest.mark.django_db(transaction=True)  # the catch-up's cursor tells committed transactions apart
def test_a_tab_that_missed_label_changes_learns_them_when_catching_up(client, mailbox, other_mailbox):
    client.force_login(mailbox.user)
    after = live_cursor()
    kept = user_label_create(mailbox=mailbox, name="Kept")
    gone = user_label_create(mailbox=mailbox, name="Gone")
    user_label_create(mailbox=other_mailbox, name="Theirs")

    client.post(reverse("labels"), {"name": "New", "colour": ""})
    client.post(reverse("label_edit", args=[kept.id]), {f"l{kept.id}-name": "Renamed", f"l{kept.id}-colour": "#d93025"})
    client.post(reverse("label_delete", args=[gone.id]), {"confirm": "1"})

    answer = client.get(reverse("events_since"), {"after": after}).json()
    new = Label.objects.get(mailbox=mailbox, name="New")
    assert answer["labels_changed"] == sorted([kept.id, new.id])  # a label since deleted is only deleted
    assert answer["labels_deleted"] == [gone.id]
    assert answer["threads"] == []
    assert client.get(reverse("events_since"), {"after": answer["latest"]}).json()["labels_changed"] == []


@pytest.mark.django_db
def test_the_label_partial_is_the_sidebar_and_label_menu_of_a_full_page(client, mailbox, other_mailbox):
    finance = user_label_create(mailbox=mailbox, name="Finance", colour="#188038")
    user_label_create(mailbox=other_mailbox, name="Theirs")
    client.force_login(mailbox.user)

    page = client.get(reverse("label", args=[finance.id])).content.decode()
    partial = client.get(reverse("labels_sidebar"), {"current": str(finance.id)}).content.decode()

    sidebar = re.search(r'<nav class="sidebar".*?</nav>', page, re.S).group()
    assert sidebar in partial
    assert f'aria-current="page" data-list="{finance.id}"' in partial
    assert f'<option value="{finance.id}">Finance</option>' in partial
    assert "Theirs" not in partial
