"""Send later in the user's time zone: 09:00 picked is 09:00 where the user is. The zone is the
mailbox's setting (Settings, validated with zoneinfo), else the browser's (reported by the compose
form, then adopted as the mailbox's), else UTC; the Scheduled page shows times in it."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from delivery.models import OutboundDelivery
from mailbox.models import Mailbox, Message
from mailbox.services.drafts import draft_create
from mailbox.services.preferences import mailbox_settings_update

pytestmark = pytest.mark.django_db
# Far enough ahead to be in the future, in winter (no DST in Paris or New York).
LATER = "2031-01-15T09:00"


@pytest.fixture
def owner(client, mailbox):
    client.force_login(mailbox.user)
    return mailbox


def _send_later(client, mailbox, send_at=LATER, **extra):
    draft = draft_create(mailbox=mailbox)
    data = {"to": "carol@example.org", "subject": "Later", "body": "x", "body_format": "plain", "version": 1}
    data.update(extra, action="send", send_at=send_at)
    return client.post(reverse("draft", args=[draft.id]), data, follow=True)


def _send_after() -> datetime:
    return OutboundDelivery.objects.get().send_after.astimezone(UTC)


def _zone_set(mailbox: Mailbox, name: str) -> None:
    mailbox_settings_update(mailbox=mailbox, display_name="Alice", keyboard_shortcuts=True, timezone=name)


def test_nine_in_the_mailboxs_zone_is_nine_there(client, owner):
    _zone_set(owner, "Europe/Paris")

    response = _send_later(client, owner, browser_timezone="America/New_York")  # the setting wins

    assert _send_after() == datetime(2031, 1, 15, 8, 0, tzinfo=UTC)
    html = response.content.decode()
    assert "Message scheduled for 15 Jan 2031, 09:00 Europe/Paris." in html
    assert "Sends 15 Jan 2031, 09:00</time>" not in html  # the page adds the zone
    assert "15 Jan 2031, 09:00 Europe/Paris</time>" in html  # the Scheduled page, in the same zone


def test_without_a_setting_the_browsers_zone_is_used_and_adopted(client, owner):
    _send_later(client, owner, browser_timezone="America/New_York")

    assert _send_after() == datetime(2031, 1, 15, 14, 0, tzinfo=UTC)
    owner.refresh_from_db()
    assert owner.timezone == "America/New_York"
    assert "15 Jan 2031, 09:00 America/New_York" in client.get(reverse("scheduled")).content.decode()


@pytest.mark.parametrize("reported", ["", "Mars/Olympus_Mons", "../../etc/passwd"])
def test_without_a_setting_or_a_known_browser_zone_it_is_utc(client, owner, reported):
    _send_later(client, owner, browser_timezone=reported)

    assert _send_after() == datetime(2031, 1, 15, 9, 0, tzinfo=UTC)
    owner.refresh_from_db()
    assert owner.timezone in ("", "UTC")


def test_a_time_the_clocks_skip_in_that_zone_is_a_form_message(client, owner):
    _zone_set(owner, "Europe/Paris")

    response = _send_later(client, owner, send_at="2031-03-30T02:30")  # Paris springs forward at 02:00

    assert response.status_code == 200
    assert "Europe/Paris" in response.content.decode()
    assert not OutboundDelivery.objects.exists()
    assert not Message.objects.filter(mailbox=owner).exists()


def test_the_compose_form_names_the_zone(client, owner):
    assert "Send later (UTC)" in client.get(reverse("compose")).content.decode()
    _zone_set(owner, "Asia/Tokyo")
    html = client.get(reverse("compose")).content.decode()
    assert "Send later (Asia/Tokyo)" in html
    assert 'data-zone-chosen="1"' in html
    assert 'name="browser_timezone"' in html


def _settings_post(client, **fields):
    data = {"display_name": "Alice", "keyboard_shortcuts": "on"}
    data.update(fields)
    return client.post(reverse("settings"), data)


def test_the_settings_page_saves_a_zone_and_refuses_an_unknown_one(client, owner):
    assert _settings_post(client, timezone="Europe/Paris").status_code == 302
    owner.refresh_from_db()
    assert owner.timezone == "Europe/Paris"
    assert '<option value="Europe/Paris" selected>' in client.get(reverse("settings")).content.decode()

    response = _settings_post(client, timezone="Europe/Atlantis")

    assert response.status_code == 400
    assert "Unknown time zone “Europe/Atlantis”" in response.content.decode()
    owner.refresh_from_db()
    assert owner.timezone == "Europe/Paris"
    assert _settings_post(client).status_code == 302  # a form without the field leaves it alone
    owner.refresh_from_db()
    assert owner.timezone == "Europe/Paris"


def test_the_service_refuses_an_unknown_zone_too(owner):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Unknown time zone"):
        _zone_set(owner, "Nowhere/Special")
