"""What a message's parts say above its body: a calendar invitation's event, an encrypted message."""

import hashlib
from datetime import UTC, date, datetime

import pytest
from django.urls import reverse

from mailbox.parsing import parse_message
from mailbox.parsing.calendar import CalendarEvent, calendar_events
from mailbox.services import message_import_raw
from tests.mailbox.container_mail import SIGNED_ENTITY, enveloped, smime_message
from tests.mailbox.conversation_mail import conversation_message
from tests.mailbox.test_corpora import FIXTURES

EXCHANGE_INVITE = FIXTURES / "php-mime-mail-parser" / "m0020"  # a real Exchange 2010 invitation


def _calendar_part(raw: bytes) -> bytes:
    parsed = parse_message(raw, received_at=datetime.now(UTC))
    return next(part.data for part in parsed.attachments if part.content_type == "text/calendar")


def _invite_mail(ics: str, *, subject: str = "Planning") -> bytes:
    return (
        "From: Org Anizer <org@example.com>\r\nTo: alice@example.test\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{hashlib.sha256(ics.encode()).hexdigest()[:16]}@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nSee the invitation.\r\n"
        "--b\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n" + ics + "\r\n--b--\r\n"
    ).encode()


CANCELLED_ALL_DAY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//Test//EN
METHOD:CANCEL
BEGIN:VEVENT
UID:offsite-1@example.com
DTSTAMP:20261101T120000Z
DTSTART;VALUE=DATE:20261203
DTEND;VALUE=DATE:20261205
SUMMARY:Team offsite <script>alert(1)</script>
LOCATION:Lakeside & Hall "B"
ORGANIZER;CN="Org <b>Anizer</b>":mailto:org@example.com
STATUS:CANCELLED
END:VEVENT
END:VCALENDAR"""


def test_real_exchange_invitation_gives_its_event():
    events = calendar_events(_calendar_part(EXCHANGE_INVITE.read_bytes()))

    assert len(events) == 1
    event = events[0]
    assert (event.method, event.title, event.location) == ("REQUEST", "1", "Meeting Room")
    assert (event.organizer_name, event.organizer_address) == ("Finntack Newsletter", "newsletter@finntack.com")
    # Outlook's Windows zone, defined by the calendar's own VTIMEZONE: +02:00 in March.
    assert event.timezone == "FLE Standard Time"
    assert event.start.astimezone(UTC) == datetime(2014, 3, 28, 9, 3, tzinfo=UTC)
    assert event.end.astimezone(UTC) == datetime(2014, 3, 28, 9, 33, tzinfo=UTC)
    assert not event.cancelled


def test_iana_zones_and_all_day_events():
    ics = CANCELLED_ALL_DAY.replace("DTSTART;VALUE=DATE:20261203", "DTSTART;TZID=Europe/Berlin:20261203T090000")
    ics = ics.replace("DTEND;VALUE=DATE:20261205", "DTEND;TZID=Europe/Berlin:20261203T170000")
    (timed,) = calendar_events(ics.encode())
    assert timed.timezone == "Europe/Berlin"
    assert timed.start.astimezone(UTC) == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)

    (all_day,) = calendar_events(CANCELLED_ALL_DAY.encode())
    assert (all_day.start, all_day.end, all_day.timezone) == (date(2026, 12, 3), date(2026, 12, 5), "")
    assert all_day.cancelled
    assert all_day.method == "CANCEL"


@pytest.mark.parametrize(
    "ics",
    [
        b"",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:not-a-date\r\n",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n",
        b"\xff\xfe\x00junk",
        b"BEGIN:VCALENDAR\r\n" + b"BEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\n" * 10_000 + b"END:VCALENDAR\r\n",
    ],
    ids=["empty", "bad-date-unterminated", "mismatched-end", "binary", "huge"],
)
def test_malformed_calendars_give_no_events_and_no_error(ics):
    events = calendar_events(ics)
    assert all(isinstance(event, CalendarEvent) for event in events)
    assert len(events) <= 5


@pytest.mark.django_db
def test_conversation_shows_the_invitation_above_the_body(client, mailbox):
    message = message_import_raw(mailbox=mailbox, raw=EXCHANGE_INVITE.read_bytes(), source_tag="test").message
    client.force_login(mailbox.user)

    html = client.get(reverse("thread_detail", args=[message.thread_id])).content.decode()

    invite = html[html.index('<section class="invite"') : html.index("</section>")]
    assert "Invitation" in invite
    assert "Fri 28 Mar 2014, 11:03 to 11:33 (FLE Standard Time, UTC+02:00)" in invite
    assert "Meeting Room" in invite
    assert "Finntack Newsletter &lt;newsletter@finntack.com&gt;" in invite
    assert html.index('<section class="invite"') < html.index('<iframe class="message-body"')


@pytest.mark.django_db
def test_invitation_text_is_escaped_and_a_cancellation_says_so(client, mailbox):
    message = message_import_raw(mailbox=mailbox, raw=_invite_mail(CANCELLED_ALL_DAY), source_tag="test").message
    client.force_login(mailbox.user)

    html = client.get(reverse("thread_detail", args=[message.thread_id])).content.decode()

    invite = html[html.index('<section class="invite') : html.index("</section>")]
    assert 'class="invite cancelled"' in invite
    assert "Cancelled event" in invite
    assert "Team offsite &lt;script&gt;alert(1)&lt;/script&gt;" in invite
    assert "<script>alert" not in html
    assert "Lakeside &amp; Hall &#34;B&#34;" in invite
    assert "Org &lt;b&gt;Anizer&lt;/b&gt;" in invite
    assert "Thu 3 Dec 2026 to Fri 4 Dec 2026" in invite


@pytest.mark.django_db
def test_a_malformed_invitation_shows_the_message_without_an_event(client, mailbox):
    raw = _invite_mail("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:2026-13-45\r\nSUMMARY:Broken")
    message = message_import_raw(mailbox=mailbox, raw=raw, source_tag="test").message
    client.force_login(mailbox.user)

    response = client.get(reverse("thread_detail", args=[message.thread_id]))

    assert response.status_code == 200
    assert 'class="invite' not in response.content.decode()


@pytest.mark.django_db
def test_an_encrypted_message_says_it_is_encrypted(client, mailbox):
    raw = smime_message(enveloped(SIGNED_ENTITY), smime_type="enveloped-data", subject="Secret")
    message = message_import_raw(mailbox=mailbox, raw=raw, source_tag="test").message
    client.force_login(mailbox.user)

    response = client.get(reverse("thread_detail", args=[message.thread_id]))

    assert response.context["cards"][0].encrypted
    html = response.content.decode()
    assert "Encrypted message" in html
    assert "smime.p7m" in html  # still downloadable


@pytest.mark.django_db
def test_plain_conversations_have_no_notices(client, mailbox):
    message = message_import_raw(
        mailbox=mailbox, raw=conversation_message(0, to=mailbox.address), source_tag="test"
    ).message
    client.force_login(mailbox.user)

    response = client.get(reverse("thread_detail", args=[message.thread_id]))

    assert response.context["cards"][0].invites == []
    assert not response.context["cards"][0].encrypted
