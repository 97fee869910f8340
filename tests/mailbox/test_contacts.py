"""Contacts made from delivered and imported mail, and the autocomplete that ranks and matches them."""

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery.services import blob_store
from mailbox.models import Alias, Contact, Label
from mailbox.parsing import parse_message
from mailbox.selectors_drafts import contacts_autocomplete
from mailbox.services import message_import_raw
from mailbox.services.contacts import contact_record
from mailbox.services.delivering import Copy, DeferredRows, copies_deliver, mailbox_deliveries_lock
from tests.mailbox.test_corpora import FIXTURES

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def _mail(n: int, *, sender: str, to: str, cc: str = "", bcc: str = "", days_ago: int = 0, **headers) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    if bcc:
        msg["Bcc"] = bcc
    msg["Subject"] = f"Note {n}"
    msg["Message-ID"] = f"<contact-{n}@example.org>"
    msg["Date"] = format_datetime(NOW - timedelta(days=days_ago))
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(f"Body {n}")
    return bytes(msg)


def _contacts(mailbox) -> dict[str, tuple[str, int]]:
    rows = Contact.objects.filter(mailbox=mailbox).values_list("address", "display_name", "times_contacted")
    return {address: (name, count) for address, name, count in rows}


def test_people_who_write_to_the_mailbox_become_contacts(mailbox):
    message_import_raw(
        mailbox=mailbox, raw=_mail(1, sender="John Smith <John@Example.org>", to=mailbox.address), source_tag="t"
    )
    message_import_raw(
        mailbox=mailbox, raw=_mail(2, sender="john@example.org", to=mailbox.address, days_ago=3), source_tag="t"
    )

    assert _contacts(mailbox) == {"john@example.org": ("John Smith", 2)}
    contact = Contact.objects.get(mailbox=mailbox)
    # The latest message's date, not the import's: old mail imported today is not recent.
    assert abs(contact.last_contacted_at - NOW) < timedelta(seconds=1)


def test_imported_sent_mail_makes_its_recipients_contacts(mailbox):
    Alias.objects.create(mailbox=mailbox, domain=mailbox.domain, address="al@example.test")
    raw = _mail(
        3,
        sender=f"Alice <{mailbox.address}>",
        to="Bob <bob@example.org>, Al <al@example.test>",
        cc="Carol Jones <carol@example.org>",
        bcc="dave@example.org",
        days_ago=400,
    )
    message_import_raw(mailbox=mailbox, raw=raw, source_tag="import")

    # The recipients, never the mailbox's own addresses (its alias included), and not the sender.
    assert _contacts(mailbox) == {
        "bob@example.org": ("Bob", 1),
        "carol@example.org": ("Carol Jones", 1),
        "dave@example.org": ("", 1),
    }


def test_takeout_sent_mail_from_an_old_address_makes_its_recipients_contacts(mailbox):
    raw = _mail(6, sender="Alice <alice.old@gmail.example>", to="Bob <bob@example.org>", cc="alice.old@gmail.example")
    message_import_raw(mailbox=mailbox, raw=raw, source_tag="import", label_roles=(Label.Role.SENT,))

    assert _contacts(mailbox) == {"bob@example.org": ("Bob", 1)}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (_mail(4, sender="poster@example.org", to="list@lists.example.org", List_Id="<dev.lists.example.org>"), "list"),
        ((FIXTURES / "flanker" / "bounce" / "mailbox-full.eml").read_bytes(), "bounce"),
    ],
    ids=["list-mail", "bounce"],
)
def test_list_mail_and_reports_make_no_contacts(mailbox, raw, why):
    message_import_raw(mailbox=mailbox, raw=raw, source_tag="test")

    assert _contacts(mailbox) == {}, why


def test_spam_makes_no_contacts(mailbox):
    raw = _mail(5, sender="Prize Desk <win@spam.example>", to=mailbox.address)
    copy = Copy(blob_store(data=raw), parse_message(raw, received_at=NOW), "test", label_roles=(Label.Role.SPAM,))
    with transaction.atomic():
        mailbox_deliveries_lock(mailbox_ids=[mailbox.id], exclusive=True)
        copies_deliver(copies=[(mailbox, copy)], deferred=DeferredRows())

    assert _contacts(mailbox) == {}


def test_a_batch_records_its_contacts_in_one_statement(mailbox):
    raws = [_mail(10 + n, sender=f"Person {n % 4} <p{n % 4}@example.org>", to=mailbox.address) for n in range(20)]
    copies = [(mailbox, Copy(blob_store(data=r), parse_message(r, received_at=NOW), "import")) for r in raws]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        mailbox_deliveries_lock(mailbox_ids=[mailbox.id], exclusive=True)
        copies_deliver(copies=copies, deferred=DeferredRows())

    assert _contacts(mailbox) == {f"p{n}@example.org": (f"Person {n}", 5) for n in range(4)}
    assert sum("mailbox_contact" in q["sql"] for q in queries.captured_queries) == 1
    # A second batch adds to the same rows.
    more = _mail(99, sender="p0@example.org", to=mailbox.address)
    message_import_raw(mailbox=mailbox, raw=more, source_tag="import")
    assert _contacts(mailbox)["p0@example.org"] == ("Person 0", 6)


def test_sending_counts_each_recipient_once(mailbox):
    from mailbox.services.drafts import DraftFields, draft_create, draft_send

    draft = draft_create(mailbox=mailbox, fields=DraftFields(to="Carol <carol@example.org>", subject="Hi", body="x"))
    draft_send(draft=draft)

    assert _contacts(mailbox) == {"carol@example.org": ("Carol", 1)}


def test_a_word_of_the_name_finds_the_contact(mailbox):
    contact_record(mailbox=mailbox, address="jsmith@example.org", display_name="John Smith")
    contact_record(mailbox=mailbox, address="carol@example.org", display_name="Jones, Carol")
    contact_record(mailbox=mailbox, address="mary@example.org", display_name="Mary Smith-Jones")
    contact_record(mailbox=mailbox, address="blacksmith@example.org", display_name="Black Smithy Works")

    def found(query: str) -> list[str]:
        return sorted(c.address for c in contacts_autocomplete(mailbox=mailbox, query=query))

    assert found("Smith") == ["blacksmith@example.org", "jsmith@example.org", "mary@example.org"]
    assert found("jones") == ["carol@example.org", "mary@example.org"]
    assert found("carol") == ["carol@example.org"]
    assert found("john sm") == ["jsmith@example.org"]
    assert found("mith") == []  # inside a word, not at its start
    assert found("jsm") == ["jsmith@example.org"]  # the address's start, as before
    # tsquery syntax typed into the box is only text.
    assert found("smith:* | carol") == []
    assert found("!&|():*'") == []


def test_frequent_and_recent_correspondents_rank_first(mailbox):
    for n in range(6):  # frequent, but a year ago
        message_import_raw(
            mailbox=mailbox,
            raw=_mail(30 + n, sender="Sam Old <sam.old@example.org>", to=mailbox.address, days_ago=365),
            source_tag="t",
        )
    for n in range(3):  # a little less frequent, this week
        message_import_raw(
            mailbox=mailbox,
            raw=_mail(40 + n, sender="Sam New <sam.new@example.org>", to=mailbox.address, days_ago=2),
            source_tag="t",
        )
    message_import_raw(
        mailbox=mailbox, raw=_mail(50, sender="Sam Once <sam.once@example.org>", to=mailbox.address), source_tag="t"
    )

    ranked = [c.address for c in contacts_autocomplete(mailbox=mailbox, query="sam")]

    assert ranked == ["sam.new@example.org", "sam.once@example.org", "sam.old@example.org"]


def test_backfill_makes_from_held_mail_the_contacts_delivery_makes(mailbox):
    """Mail delivered before contacts came from mail: the backfill (``manage.py contacts_backfill``)
    finds the same contacts, counts, names and dates that delivery records, and repeating it changes nothing."""
    raws = [
        _mail(60, sender="John Smith <john@example.org>", to=mailbox.address, days_ago=9),
        _mail(61, sender="john@example.org", to=mailbox.address, days_ago=2),
        _mail(62, sender=f"Alice <{mailbox.address}>", to="Bob <bob@example.org>", cc="John S <john@example.org>"),
        _mail(63, sender="poster@example.org", to="dev@lists.example.org", List_Id="<dev.lists.example.org>"),
    ]
    for raw in raws:
        message_import_raw(mailbox=mailbox, raw=raw, source_tag="import")
    sent = _mail(64, sender="Alice <alice.old@gmail.example>", to="Eve <eve@example.org>")
    message_import_raw(mailbox=mailbox, raw=sent, source_tag="import", label_roles=(Label.Role.SENT,))
    spam = _mail(65, sender="win@spam.example", to=mailbox.address)
    message_import_raw(mailbox=mailbox, raw=spam, source_tag="import", label_roles=(Label.Role.SPAM,))
    fields = ("address", "display_name", "times_contacted", "last_contacted_at")
    delivered = sorted(Contact.objects.filter(mailbox=mailbox).values_list(*fields))
    Contact.objects.filter(mailbox=mailbox).delete()

    call_command("contacts_backfill", stdout=StringIO())
    assert sorted(Contact.objects.filter(mailbox=mailbox).values_list(*fields)) == delivered
    call_command("contacts_backfill", "--mailbox", mailbox.address, stdout=StringIO())
    assert sorted(Contact.objects.filter(mailbox=mailbox).values_list(*fields)) == delivered
    assert [a for a, *_ in delivered] == ["bob@example.org", "eve@example.org", "john@example.org"]
