"""Compose and drafts pages through the test client: scoping, the no-JavaScript form, the JSON
endpoints compose.js uses, validation messages and query counts."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from delivery.models import OutboundDelivery, Suppression
from delivery.tracking import suppression_add
from mailbox.models import Contact, Draft, DraftAttachment, Label, Message, MessageLabel
from mailbox.selectors_drafts import DRAFTS_PAGE_SIZE
from mailbox.services import message_import_raw
from mailbox.services.contacts import contact_record
from mailbox.services.drafts import DraftFields, draft_attach, draft_create
from mailbox.views_compose import MESSAGE_SENT
from tests.mail import raw_message


def _form(**overrides):
    data = {"to": "", "cc": "", "bcc": "", "subject": "", "body": "", "body_format": "plain"}
    data.update(overrides)
    return data


def _deliver(mailbox, message_id="orig@example.org", subject="Quarterly report", attachment=b""):
    raw = raw_message(message_id, subject, to=mailbox.address, attachment=attachment)
    return message_import_raw(mailbox=mailbox, raw=raw, source_tag="test").message


@pytest.fixture
def owner(client, mailbox):
    client.force_login(mailbox.user)
    return mailbox


# --- Pages -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_compose_page_has_labelled_fields_and_no_inline_script(client, owner):
    response = client.get(reverse("compose"))
    html = response.content.decode()
    assert response.status_code == 200
    for field_id, label in [
        ("id_to", "To"),
        ("id_cc", "Cc"),
        ("id_bcc", "Bcc"),
        ("id_subject", "Subject"),
        ("id_body", "Message"),
        ("id_files", "Attach files"),
    ]:
        assert re.search(rf'<label for="{field_id}">{label}', html), field_id
    assert 'name="csrfmiddlewaretoken"' in html
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert not re.search(r"\son[a-z]+=", html)
    assert not Draft.objects.exists()


@pytest.mark.django_db
def test_reply_page_prefills_quote_and_subject(client, owner):
    message = _deliver(owner)
    response = client.get(reverse("compose"), {"reply_to": message.id, "mode": "reply"})
    form = response.context["form"]
    assert form.initial["subject"] == "Re: Quarterly report"
    assert form.initial["to"] == "Carol <carol@example.org>"
    assert "Carol &lt;carol@example.org&gt; wrote:\n&gt; Body of Quarterly report" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("reply_to", ["999999", "abc", "-1"])
def test_reply_to_a_missing_or_malformed_message_is_404(client, owner, reply_to):
    assert client.get(reverse("compose"), {"reply_to": reply_to, "mode": "reply"}).status_code == 404


@pytest.mark.django_db
def test_reply_to_another_users_message_is_404(client, owner, other_mailbox):
    theirs = _deliver(other_mailbox)
    assert client.get(reverse("compose"), {"reply_to": theirs.id, "mode": "reply"}).status_code == 404
    response = client.post(reverse("draft_autosave"), _form(mode="reply", reply_to=theirs.id))
    assert response.status_code == 404
    assert not Draft.objects.exists()


@pytest.mark.django_db
def test_another_users_draft_is_404_everywhere(client, owner, other_mailbox):
    theirs = draft_create(mailbox=other_mailbox, fields=DraftFields(subject="secret"))
    assert client.get(reverse("draft", args=[theirs.id])).status_code == 404
    assert client.post(reverse("draft", args=[theirs.id]), _form(body="x", version=1)).status_code == 404
    assert client.post(reverse("draft", args=[theirs.id]), {"action": "discard"}).status_code == 404
    assert client.post(reverse("draft_autosave"), _form(draft=theirs.id, version=1)).status_code == 404
    upload = SimpleUploadedFile("a.txt", b"a")
    assert client.post(reverse("draft_attachment_upload", args=[theirs.id]), {"file": upload}).status_code == 404
    assert "secret" not in client.get(reverse("drafts")).content.decode()
    assert Draft.objects.get(pk=theirs.id).subject == "secret"


# --- The form without JavaScript -------------------------------------------------------------


@pytest.mark.django_db
def test_plain_post_creates_the_draft_with_files_and_redirects(client, owner):
    message = _deliver(owner, attachment=b"%PDF original")
    url = reverse("compose") + f"?reply_to={message.id}&mode=forward"
    data = _form(
        to="dave@example.org", subject="Fwd: Quarterly report", body="FYI", mode="forward", reply_to=message.id
    )
    data["files"] = [SimpleUploadedFile("notes.txt", b"my notes", "text/plain")]
    response = client.post(url, data, follow=True)
    draft = Draft.objects.get()
    assert response.redirect_chain == [(reverse("draft", args=[draft.id]), 302)]
    assert (draft.mode, draft.forward_of_id, draft.to, draft.body) == ("forward", message.id, "dave@example.org", "FYI")
    assert sorted(a.filename for a in draft.attachments.all()) == ["invoice.pdf", "notes.txt"]
    assert "Draft saved." in response.content.decode()


@pytest.mark.django_db
def test_plain_post_saves_and_keeps_bad_addresses_with_a_message(client, owner):
    draft = draft_create(mailbox=owner)
    url = reverse("draft", args=[draft.id])
    response = client.post(url, _form(to="carol@example.org, not an address", body="typed", version=1), follow=True)
    html = response.content.decode()
    assert "Not a valid address: not an address" in html
    assert 'value="carol@example.org, not an address"' in html
    saved = Draft.objects.get(pk=draft.id)
    assert (saved.to, saved.body, saved.version) == ("carol@example.org, not an address", "typed", 2)


@pytest.mark.django_db
def test_send_queues_the_message_files_it_under_sent_and_discards_the_draft(client, owner):
    draft = draft_create(mailbox=owner)
    data = _form(to="Carol <carol@example.org>", subject="Hi", body="Hello", version=1, action="send")
    response = client.post(reverse("draft", args=[draft.id]), data, follow=True)
    assert MESSAGE_SENT in response.content.decode()
    assert not Draft.objects.filter(pk=draft.id).exists()
    sent = Message.objects.get(mailbox=owner, subject="Hi")
    assert MessageLabel.objects.filter(message=sent, label__role=Label.Role.SENT).exists()
    delivery = OutboundDelivery.objects.get(mailbox_id=owner.id)
    assert (delivery.recipient, delivery.status) == ("carol@example.org", OutboundDelivery.Status.QUEUED)
    assert Contact.objects.filter(mailbox=owner, address="carol@example.org", display_name="Carol").exists()


@pytest.mark.django_db
def test_a_refused_send_keeps_the_draft_and_says_why(client, owner):
    suppression_add(address="carol@example.org", reason=Suppression.Reason.HARD_BOUNCE, source="test")
    draft = draft_create(mailbox=owner)
    data = _form(to="carol@example.org", subject="Hi", body="Hello", version=1, action="send")
    response = client.post(reverse("draft", args=[draft.id]), data, follow=True)
    assert "Not sent." in response.content.decode()
    assert Draft.objects.get(pk=draft.id).body == "Hello"
    assert not OutboundDelivery.objects.filter(mailbox_id=owner.id).exists()


@pytest.mark.django_db
def test_send_without_recipients_says_so(client, owner, settings):
    settings.MAILSITE_COMPOSE_MAX_RECIPIENTS = 2
    draft = draft_create(mailbox=owner)
    response = client.post(reverse("draft", args=[draft.id]), _form(version=1, action="send"), follow=True)
    assert "Not sent. Add at least one recipient. Your draft is saved." in response.content.decode()
    data = _form(to="a@x.org, b@x.org", cc="c@x.org", version=2, action="send")
    response = client.post(reverse("draft", args=[draft.id]), data, follow=True)
    assert "Too many recipients: 3; a message can go to at most 2." in response.content.decode()


@pytest.mark.django_db
def test_a_stale_form_post_keeps_the_text_and_offers_to_overwrite(client, owner):
    draft = draft_create(mailbox=owner)
    client.post(reverse("draft_autosave"), _form(draft=draft.id, version=1, body="from the other tab"))
    response = client.post(reverse("draft", args=[draft.id]), _form(body="from this tab", version=1))
    assert response.status_code == 409
    html = response.content.decode()
    assert "changed in another tab" in html
    assert "from this tab" in html
    assert response.context["form"]["version"].value() == "2"
    again = client.post(reverse("draft", args=[draft.id]), _form(body="from this tab", version=2))
    assert again.status_code == 302
    assert Draft.objects.get(pk=draft.id).body == "from this tab"


@pytest.mark.django_db
def test_bad_format_value_is_a_form_error_not_a_500(client, owner):
    draft = draft_create(mailbox=owner)
    response = client.post(reverse("draft", args=[draft.id]), _form(body="kept", body_format="<svg>", version=1))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert "kept" in response.content.decode()


@pytest.mark.django_db
def test_oversized_file_in_the_form_is_a_message_and_the_text_is_saved(client, owner, settings):
    settings.MAILSITE_COMPOSE_MAX_ATTACHMENT_BYTES = 10
    draft = draft_create(mailbox=owner)
    data = _form(body="still here", version=1, files=[SimpleUploadedFile("big.bin", b"x" * 11)])
    response = client.post(reverse("draft", args=[draft.id]), data, follow=True)
    assert "“big.bin” is 11 bytes; attachments can be at most 10 bytes." in response.content.decode()
    assert Draft.objects.get(pk=draft.id).body == "still here"
    assert not DraftAttachment.objects.exists()


@pytest.mark.django_db
def test_remove_attachment_and_discard_buttons(client, owner):
    draft = draft_create(mailbox=owner)
    attachment = draft_attach(draft=draft, upload=SimpleUploadedFile("a.txt", b"a"))
    client.post(reverse("draft", args=[draft.id]), _form(version=1, remove_attachment=attachment.id))
    assert not DraftAttachment.objects.exists()
    response = client.post(reverse("draft", args=[draft.id]), {"action": "discard"})
    assert response.url == reverse("drafts")
    assert not Draft.objects.exists()


# --- JSON endpoints --------------------------------------------------------------------------


@pytest.mark.django_db
def test_autosave_creates_then_updates_and_reports_conflicts(client, owner):
    message = _deliver(owner)
    first = client.post(reverse("draft_autosave"), _form(mode="reply_all", reply_to=message.id, body="one"))
    created = first.json()
    draft = Draft.objects.get()
    assert created["draft"] == draft.id
    assert created["version"] == 1
    assert created["url"] == reverse("draft", args=[draft.id])
    assert (draft.mode, draft.reply_to_id) == ("reply_all", message.id)
    second = client.post(reverse("draft_autosave"), _form(draft=draft.id, version=1, body="two", to="x"))
    assert second.json()["version"] == 2
    assert second.json()["problems"] == {"to": "Not a valid address: x"}
    stale = client.post(reverse("draft_autosave"), _form(draft=draft.id, version=1, body="three"))
    assert stale.status_code == 409
    assert stale.json()["version"] == 2
    assert Draft.objects.get().body == "two"


@pytest.mark.django_db
def test_every_compose_post_requires_csrf(owner):
    from django.test import Client

    draft = draft_create(mailbox=owner)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner.user)
    assert strict.post(reverse("draft_autosave"), _form(body="x")).status_code == 403
    assert strict.post(reverse("compose"), _form(body="x")).status_code == 403
    assert strict.post(reverse("draft", args=[draft.id]), {"action": "discard"}).status_code == 403
    upload = {"file": SimpleUploadedFile("a.txt", b"a")}
    assert strict.post(reverse("draft_attachment_upload", args=[draft.id]), upload).status_code == 403
    assert Draft.objects.get(pk=draft.id).version == 1
    assert not DraftAttachment.objects.exists()


@pytest.mark.django_db
def test_upload_attaches_and_refuses_large_files_before_reading(client, owner, settings):
    settings.MAILSITE_COMPOSE_MAX_ATTACHMENT_BYTES = 100_000
    draft = draft_create(mailbox=owner)
    url = reverse("draft_attachment_upload", args=[draft.id])
    ok = client.post(url, {"file": SimpleUploadedFile("photo.png", b"\x89PNG" + b"0" * 100, "image/png")})
    assert ok.json()["filename"] == "photo.png"
    assert ok.json()["size_text"] == "104 bytes"
    too_big = client.post(url, {"file": SimpleUploadedFile("huge.bin", b"0" * 200_000)})
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "That file is too large: attachments can be at most 98 KB."
    just_over = client.post(url, {"file": SimpleUploadedFile("over.bin", b"0" * 100_001)})
    assert just_over.status_code == 413
    assert "“over.bin” is 98 KB" in just_over.json()["error"]
    assert client.post(url, {}).json() == {"error": "No file was received."}
    assert [a.filename for a in DraftAttachment.objects.all()] == ["photo.png"]


@pytest.mark.django_db
def test_autocomplete_answers_own_contacts_as_json(client, owner, other_mailbox):
    contact_record(mailbox=owner, address="carol@example.org", display_name="Jones, Carol")
    contact_record(mailbox=other_mailbox, address="carla@example.org")
    response = client.get(reverse("contacts_autocomplete"), {"q": "car"})
    assert response.json() == {
        "results": [
            {"address": "carol@example.org", "name": "Jones, Carol", "value": '"Jones, Carol" <carol@example.org>'}
        ]
    }
    assert client.get(reverse("contacts_autocomplete")).json() == {"results": []}


# --- Lists and query counts ------------------------------------------------------------------


@pytest.mark.django_db
def test_drafts_page_lists_newest_first_with_keyset_pages(client, owner):
    for n in range(DRAFTS_PAGE_SIZE + 1):
        draft_create(mailbox=owner, fields=DraftFields(subject=f"Draft number {n}"))
    first = client.get(reverse("drafts"))
    html = first.content.decode()
    assert html.index(f"Draft number {DRAFTS_PAGE_SIZE}") < html.index("Draft number 1<")
    assert "Draft number 0<" not in html
    second = client.get(reverse("drafts"), {"older": first.context["page"].older.encode()})
    assert "Draft number 0<" in second.content.decode()


@pytest.mark.django_db
def test_drafts_page_has_the_mailbox_chrome_and_its_shortcuts(client, owner):
    html = client.get(reverse("drafts")).content.decode()

    assert 'data-shortcuts="on"' in html  # g i, c, / work here too
    assert 'id="search-q"' in html
    assert "mailbox/app.js" in html


@pytest.mark.django_db
def test_query_counts_do_not_grow(client, owner, django_assert_max_num_queries):
    message = _deliver(owner, attachment=b"%PDF")
    for n in range(20):
        draft = draft_create(mailbox=owner, mode=Draft.Mode.FORWARD, source=None, fields=DraftFields(subject=str(n)))
        draft_attach(draft=draft, upload=SimpleUploadedFile(f"{n}.txt", str(n).encode()))
    with django_assert_max_num_queries(6):
        client.get(reverse("drafts"))
    with django_assert_max_num_queries(7):
        client.get(reverse("draft", args=[draft.id]))
    with django_assert_max_num_queries(9):
        client.get(reverse("compose"), {"reply_to": message.id, "mode": "reply_all"})
    with django_assert_max_num_queries(5):
        client.get(reverse("contacts_autocomplete"), {"q": "c"})
