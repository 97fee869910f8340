"""Dates are shown in the mailbox's time zone: the list's "today → time" rule, the conversation's
dates, the reply's "On DATE" line and the live-update row all read the zone the middleware
activates for the logged-in user."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mailbox.models import Label, Message
from mailbox.services import message_import_raw
from mailbox.services.preferences import mailbox_settings_update, zone_named
from tests.mail import raw_message

pytestmark = pytest.mark.django_db

# 23:30 UTC on 2 Nov is 08:30 on 3 Nov in Tokyo (UTC+9, no DST), where it is then "today".
ARRIVED = "Mon, 02 Nov 2026 23:30:00 +0000"
NOW = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)


@pytest.fixture
def tokyo(client, mailbox, monkeypatch):
    mailbox_settings_update(mailbox=mailbox, display_name="Alice", keyboard_shortcuts=True, timezone="Asia/Tokyo")
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    client.force_login(mailbox.user)
    return mailbox


def _message(mailbox) -> Message:
    raw = raw_message("late@x", "Late one", date=ARRIVED)
    return message_import_raw(mailbox=mailbox, raw=raw, source_tag="t", label_roles=(Label.Role.INBOX,)).message


def test_the_row_shows_the_local_time_of_a_message_of_local_today(client, tokyo):
    message = _message(tokyo)

    page = client.get(reverse("inbox")).content.decode()
    row = client.get(reverse("thread_row", args=[message.thread_id]), {"label": "all"}).content.decode()

    for html in (page, row):
        assert ">08:30<" in html
        assert "2026-11-03T08:30:00+09:00" in html
    assert timezone.get_current_timezone_name() == "UTC"  # dropped after the response


def test_the_conversation_and_the_reply_quote_show_local_dates(client, tokyo):
    message = _message(tokyo)

    conversation = client.get(reverse("thread_detail", args=[message.thread_id])).content.decode()
    reply = client.get(reverse("compose"), {"reply_to": message.id, "mode": "reply"}).content.decode()

    assert "3 Nov 2026, 08:30" in conversation
    assert "On Tue, 3 Nov 2026 at 08:30, Carol" in reply


def test_the_zone_costs_no_query_and_is_made_once_per_name(client, tokyo):
    client.get(reverse("settings"))  # a first request: the session, the user and the mailbox
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("settings"))

    assert not [q for q in queries.captured_queries if "mailbox_mailbox" in q["sql"] and "auth_user" not in q["sql"]]
    assert zone_named("Asia/Tokyo") is zone_named("Asia/Tokyo")
    assert zone_named("Mars/Olympus") is None
