"""Draft services and selectors: modes, quoting, recipients, autosave conflicts, attachments,
and the translation into what the send service takes."""

from email.message import EmailMessage

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile

from mailbox.models import Draft, DraftAttachment
from mailbox.selectors_drafts import (
    DRAFTS_PAGE_SIZE,
    DraftCursor,
    contacts_autocomplete,
    draft_get,
    draft_list,
    source_message_get,
)
from mailbox.services import message_import_raw
from mailbox.services.contacts import contact_record
from mailbox.services.drafts import (
    AttachmentRejected,
    DraftConflict,
    DraftFields,
    body_html,
    draft_attach,
    draft_attachment_remove,
    draft_autosave,
    draft_create,
    draft_discard,
    draft_to_outgoing,
    format_address,
    recipients_check,
    subject_forward,
    subject_reply,
)


def deliver(
    mailbox,
    *,
    subject="Lunch plans",
    sender="Carol Jones <carol@example.org>",
    to=None,
    cc="",
    reply_to="",
    text="Shall we meet at noon?\n\nCarol",
    html="",
    attachment=b"",
    message_id="m1@example.org",
):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to or mailbox.address
    if cc:
        msg["Cc"] = cc
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    if text:
        msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html") if text else msg.set_content(html, subtype="html")
    if attachment:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="invoice.pdf")
    delivered = message_import_raw(mailbox=mailbox, raw=bytes(msg), source_tag="test")
    return source_message_get(mailbox=mailbox, message_id=delivered.message.id)


# --- Subjects and addresses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("Lunch", "Re: Lunch"),
        ("Re: Lunch", "Re: Lunch"),
        ("RE: Lunch", "RE: Lunch"),
        ("AW: Essen", "AW: Essen"),
        ("Fwd: Lunch", "Re: Fwd: Lunch"),
        ("", "Re:"),
    ],
)
def test_reply_subject_gets_one_prefix(original, expected):
    assert subject_reply(original) == expected


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("Lunch", "Fwd: Lunch"),
        ("Fwd: Lunch", "Fwd: Lunch"),
        ("FW: Lunch", "FW: Lunch"),
        ("Re: Lunch", "Fwd: Re: Lunch"),
    ],
)
def test_forward_subject_gets_one_prefix(original, expected):
    assert subject_forward(original) == expected


def test_names_with_separators_are_quoted():
    assert format_address("Jones, Carol", "carol@example.org") == '"Jones, Carol" <carol@example.org>'
    assert format_address("Carol", "carol@example.org") == "Carol <carol@example.org>"
    assert format_address("", "carol@example.org") == "carol@example.org"


def test_recipients_check_names_bad_addresses_per_field():
    problems = recipients_check(to="carol@example.org, not-an-address", cc="dave@", bcc="")
    assert problems == {"to": "Not a valid address: not-an-address", "cc": "Not a valid address: dave@"}
    assert recipients_check(to='"Jones, Carol" <carol@example.org>; dave@example.org', cc="", bcc="") == {}


def test_recipients_check_requires_one_only_to_send():
    assert recipients_check(to="", cc="", bcc="") == {"to": "Add at least one recipient."}
    assert recipients_check(to="", cc="", bcc="", require_one=False) == {}


def test_recipients_check_caps_the_count(settings):
    settings.MAILSITE_COMPOSE_MAX_RECIPIENTS = 3
    problems = recipients_check(to="a@x.org, b@x.org", cc="c@x.org", bcc="d@x.org")
    assert problems == {"to": "Too many recipients: 4; a message can go to at most 3."}


# --- Creating from a mode --------------------------------------------------------------------


@pytest.mark.django_db
def test_new_draft_starts_with_the_signature(mailbox):
    mailbox.signature = "Alice\nexample.test"
    mailbox.save(update_fields=["signature"])
    draft = draft_create(mailbox=mailbox)
    assert draft.mode == Draft.Mode.NEW
    assert draft.body == "\n\n-- \nAlice\nexample.test"
    assert draft.version == 1


@pytest.mark.django_db
def test_reply_quotes_the_original_under_the_signature(mailbox):
    mailbox.signature = "Alice"
    mailbox.save(update_fields=["signature"])
    source = deliver(mailbox)
    draft = draft_create(mailbox=mailbox, mode=Draft.Mode.REPLY, source=source)
    assert draft.to == "Carol Jones <carol@example.org>"
    assert draft.cc == ""
    assert draft.subject == "Re: Lunch plans"
    assert draft.reply_to_id == source.id
    assert draft.thread_id == source.thread_id
    assert draft.body == (
        "\n\n-- \nAlice\n\n"
        "On Mon, 2 Nov 2026 at 10:00, Carol Jones <carol@example.org> wrote:\n"
        "> Shall we meet at noon?\n>\n> Carol\n"
    )


@pytest.mark.django_db
def test_reply_goes_to_reply_to_when_given(mailbox):
    source = deliver(mailbox, reply_to="List <list@example.org>")
    assert draft_create(mailbox=mailbox, mode=Draft.Mode.REPLY, source=source).to == "List <list@example.org>"


@pytest.mark.django_db
def test_reply_all_drops_own_addresses_and_duplicates(mailbox):
    from mailbox.models import Alias

    Alias.objects.create(mailbox=mailbox, domain=mailbox.domain, address="alice.alias@example.test")
    source = deliver(
        mailbox,
        to=f"Alice <{mailbox.address}>, Dave <dave@example.org>, CAROL@example.org",
        cc="alice.alias@example.test, Erin <erin@example.org>, dave@example.org",
    )
    draft = draft_create(mailbox=mailbox, mode=Draft.Mode.REPLY_ALL, source=source)
    assert draft.to == "Carol Jones <carol@example.org>, Dave <dave@example.org>"
    assert draft.cc == "Erin <erin@example.org>"


@pytest.mark.django_db
def test_replying_to_own_message_goes_to_its_recipients(mailbox):
    source = deliver(mailbox, sender=f"Alice <{mailbox.address}>", to="Dave <dave@example.org>")
    draft = draft_create(mailbox=mailbox, mode=Draft.Mode.REPLY, source=source)
    assert draft.to == "Dave <dave@example.org>"


@pytest.mark.django_db
def test_reply_to_an_html_only_message_quotes_its_text(mailbox):
    source = deliver(mailbox, text="", html="<p>Hello <b>there</b> &amp; bye</p><script>x()</script>")
    draft = draft_create(mailbox=mailbox, mode=Draft.Mode.REPLY, source=source)
    assert "> Hello there & bye" in draft.body
    assert "x()" not in draft.body


@pytest.mark.django_db
def test_reply_to_an_html_only_message_keeps_its_lines(mailbox):
    html = "<div>Hello Bob,</div><p>Line one</p><p>Line two<br>Line three</p><style>p {color: red}</style>"
    source = deliver(mailbox, text="", html=html)
    draft = draft_create(mailbox=mailbox, mode=Draft.Mode.REPLY, source=source)
    quoted = [line for line in draft.body.split("\n") if line.startswith("> ")]
    assert quoted == ["> Hello Bob,", "> Line one", "> Line two", "> Line three"]
    assert "color" not in draft.body


@pytest.mark.django_db
def test_forward_of_an_html_only_message_keeps_its_lines(mailbox):
    source = deliver(mailbox, text="", html="<p>First &lt;para&gt;</p><ul><li>one</li><li>two</li></ul>")
    draft = draft_create(mailbox=mailbox, mode=Draft.Mode.FORWARD, source=source)
    assert "\n\nFirst <para>\n\n- one\n- two\n" in draft.body


@pytest.mark.django_db
def test_forward_carries_headers_and_attachments_without_copying(mailbox):
    source = deliver(mailbox, cc="Erin <erin@example.org>", attachment=b"%PDF-1.4 forwarded")
    draft = draft_create(mailbox=mailbox, mode=Draft.Mode.FORWARD, source=source)
    assert draft.to == ""
    assert draft.subject == "Fwd: Lunch plans"
    assert draft.forward_of_id == source.id
    assert "---------- Forwarded message ----------\nFrom: Carol Jones <carol@example.org>\n" in draft.body
    assert "Subject: Lunch plans\nTo: alice@example.test\nCc: Erin <erin@example.org>\n\nShall we meet" in draft.body
    (carried,) = DraftAttachment.objects.filter(draft=draft)
    (original,) = source.attachments.all()
    assert carried.blob_id == original.blob_id
    assert (carried.filename, carried.size, carried.mailbox_id) == ("invoice.pdf", original.size, mailbox.id)


@pytest.mark.django_db
def test_a_foreign_source_message_is_refused(mailbox, other_mailbox):
    foreign = deliver(other_mailbox)
    assert source_message_get(mailbox=mailbox, message_id=foreign.id) is None
    with pytest.raises(ValueError, match="another mailbox"):
        draft_create(mailbox=mailbox, mode=Draft.Mode.REPLY, source=foreign)


# --- Autosave --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_autosave_bumps_the_version(mailbox):
    draft = draft_create(mailbox=mailbox)
    saved = draft_autosave(mailbox=mailbox, draft_id=draft.id, version=1, fields=DraftFields(to="x@y.org", body="Hi"))
    assert (saved.version, saved.to, saved.body) == (2, "x@y.org", "Hi")
    assert saved.updated_at > draft.updated_at


@pytest.mark.django_db
def test_a_stale_version_is_a_conflict_and_writes_nothing(mailbox):
    draft = draft_create(mailbox=mailbox)
    draft_autosave(mailbox=mailbox, draft_id=draft.id, version=1, fields=DraftFields(body="from tab one"))
    with pytest.raises(DraftConflict) as conflict:
        draft_autosave(mailbox=mailbox, draft_id=draft.id, version=1, fields=DraftFields(body="from tab two"))
    assert conflict.value.current_version == 2
    assert "changed in another tab" in str(conflict.value)
    assert Draft.objects.get(pk=draft.id).body == "from tab one"


@pytest.mark.django_db
def test_autosave_of_another_mailboxs_draft_finds_nothing(mailbox, other_mailbox):
    theirs = draft_create(mailbox=other_mailbox)
    with pytest.raises(Draft.DoesNotExist):
        draft_autosave(mailbox=mailbox, draft_id=theirs.id, version=1, fields=DraftFields(body="mine"))


# --- Attachments -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_attach_stores_the_bytes_once_and_remove_keeps_the_blob(mailbox):
    draft = draft_create(mailbox=mailbox)
    first = draft_attach(draft=draft, upload=SimpleUploadedFile("../../notes.txt", b"hello", "text/plain"))
    second = draft_attach(draft=draft, upload=SimpleUploadedFile("copy.txt", b"hello", "TEXT/PLAIN"))
    assert first.filename == "notes.txt"
    assert second.content_type == "text/plain"
    assert first.blob_id == second.blob_id
    assert storages["mail"].open(first.blob.storage_key).read() == b"hello"
    assert draft_attachment_remove(draft=draft, attachment_id=first.id)
    assert list(draft_get(mailbox=mailbox, draft_id=draft.id).attachments.all()) == [second]
    assert storages["mail"].exists(first.blob.storage_key)


@pytest.mark.django_db
def test_attachment_over_the_limit_is_rejected_with_a_message(mailbox, settings):
    settings.MAILSITE_COMPOSE_MAX_ATTACHMENT_BYTES = 1024
    draft = draft_create(mailbox=mailbox)
    with pytest.raises(AttachmentRejected) as rejected:
        draft_attach(draft=draft, upload=SimpleUploadedFile("big.bin", b"x" * 2048))
    assert rejected.value.message == "“big.bin” is 2.0 KB; attachments can be at most 1.0 KB."
    assert not DraftAttachment.objects.filter(draft=draft).exists()


@pytest.mark.django_db
def test_attachment_of_odd_name_and_type_is_cleaned(mailbox):
    draft = draft_create(mailbox=mailbox)
    attachment = draft_attach(draft=draft, upload=SimpleUploadedFile("\x00\x1b", b"data", "text/html; x=<y>"))
    assert (attachment.filename, attachment.content_type) == ("attachment", "application/octet-stream")


@pytest.mark.django_db
def test_discard_deletes_the_draft_and_its_attachments(mailbox):
    draft = draft_create(mailbox=mailbox)
    draft_attach(draft=draft, upload=SimpleUploadedFile("a.txt", b"a"))
    draft_discard(draft=draft)
    assert not Draft.objects.filter(pk=draft.id).exists()
    assert not DraftAttachment.objects.filter(mailbox=mailbox).exists()


# --- Selectors -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_draft_list_pages_by_keyset_newest_first(mailbox, other_mailbox):
    drafts = [draft_create(mailbox=mailbox, fields=DraftFields(subject=f"d{n}")) for n in range(DRAFTS_PAGE_SIZE + 3)]
    draft_create(mailbox=other_mailbox)
    draft_autosave(mailbox=mailbox, draft_id=drafts[0].id, version=1, fields=DraftFields(subject="edited last"))
    first = draft_list(mailbox=mailbox)
    second = draft_list(mailbox=mailbox, older_than=first.older)
    assert first.drafts[0].subject == "edited last"
    assert len(first.drafts) == DRAFTS_PAGE_SIZE
    assert len(second.drafts) == 3
    assert second.older is None
    assert {d.id for d in first.drafts + second.drafts} == {d.id for d in drafts}


@pytest.mark.parametrize("value", ["", "x", "2026-01-01_1", "2026-01-01T00:00:00+00:00_x"])
def test_malformed_draft_cursor_is_none(value):
    assert DraftCursor.decode(value) is None


@pytest.mark.django_db
def test_autocomplete_matches_address_name_or_name_word_prefix_in_own_mailbox(mailbox, other_mailbox):
    contact_record(mailbox=mailbox, address="Carol@Example.org", display_name="Carol Jones")
    contact_record(mailbox=mailbox, address="dave@example.org", display_name="Dave Carlson")
    for _ in range(3):
        contact_record(mailbox=mailbox, address="cathy@example.org")
    contact_record(mailbox=other_mailbox, address="carla@example.org")
    found = contacts_autocomplete(mailbox=mailbox, query=" CA")
    # Most contacted first, then the more recent ("Dave Carlson" by the start of his second name).
    assert [c.address for c in found] == ["cathy@example.org", "dave@example.org", "carol@example.org"]
    assert [c.address for c in contacts_autocomplete(mailbox=mailbox, query="dave c")] == ["dave@example.org"]
    assert contacts_autocomplete(mailbox=mailbox, query="  ") == []
    assert contacts_autocomplete(mailbox=mailbox, query="%") == []


@pytest.mark.django_db
def test_contact_record_counts_and_keeps_a_known_name(mailbox):
    contact_record(mailbox=mailbox, address="carol@example.org", display_name="Carol")
    contact = contact_record(mailbox=mailbox, address="CAROL@example.org")
    assert (contact.times_contacted, contact.display_name) == (2, "Carol")


# --- Towards sending -------------------------------------------------------------------------


def test_simple_formatting_renders_safe_html():
    html = body_html(
        body="**bold** <script>x()</script> [a](javascript:alert(1)) [b](https://e.org)", body_format="markdown"
    )
    assert "<strong>bold</strong>" in html
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert '<a href="https://e.org" rel="noopener noreferrer">b</a>' in html
    assert body_html(body="**bold**", body_format="plain") is None


@pytest.mark.django_db
def test_draft_to_outgoing_has_the_send_fields(mailbox):
    source = deliver(mailbox, attachment=b"%PDF-1.4 x")
    draft = draft_create(mailbox=mailbox, mode=Draft.Mode.FORWARD, source=source)
    draft_autosave(
        mailbox=mailbox,
        draft_id=draft.id,
        version=1,
        fields=DraftFields(
            to='"Jones, Carol" <carol@example.org>; dave@example.org',
            bcc="erin@example.org",
            subject="Fwd: Lunch plans",
            body="*See* below",
            body_format="markdown",
        ),
    )
    outgoing = draft_to_outgoing(draft_get(mailbox=mailbox, draft_id=draft.id))
    (attachment,) = source.attachments.all()
    assert outgoing == {
        "from_address": "alice@example.test",
        "to": ['"Jones, Carol" <carol@example.org>', "dave@example.org"],
        "cc": [],
        "bcc": ["erin@example.org"],
        "subject": "Fwd: Lunch plans",
        "text": "*See* below",
        "html": "<p><em>See</em> below</p>\n",
        "attachments": [("invoice.pdf", "application/pdf", attachment.blob.sha256)],
        "in_reply_to_message_id": None,
        "forward_of_message_id": source.id,
        "forward_as_attachment": False,
    }


@pytest.mark.parametrize(
    "entry", ["foo bar", "Carol <carol@example.org", "carol@", "@example.org", "carol@example.org extra", '"Carol <x>']
)
def test_entries_that_are_not_addresses_are_reported_as_typed(entry):
    assert recipients_check(to=f"dave@example.org, {entry}", cc="", bcc="") == {"to": f"Not a valid address: {entry}"}


@pytest.mark.django_db
def test_autocomplete_is_two_prefix_index_ranges_and_a_name_word_look_up(mailbox):
    """With a realistic address book, the planner answers the selector's query from the two
    (mailbox, pattern-ops) indexes (range bounds, ``~>=~``) and the names' word index."""
    from django.db import connection

    from mailbox.models import Contact
    from mailbox.selectors_drafts import contacts_matching

    # Volume for the planner only: thousands of rows through contact_record would take minutes.
    Contact.objects.bulk_create(
        Contact(mailbox=mailbox, address=f"user{n}@example.org", display_name=f"Name {n}") for n in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mailbox_contact")
    plan = contacts_matching(mailbox=mailbox, prefix="user12").explain()
    assert "BitmapOr" in plan
    conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert any("contact_address_prefix" in line for line in plan.splitlines())
    assert any("contact_name_prefix" in line for line in plan.splitlines())
    assert any("contact_name_words" in line for line in plan.splitlines())
    assert sum("~>=~" in line for line in conditions) == 2
    assert sum("@@" in line for line in conditions) == 1
    assert len(conditions) == 3
