"""The request log's line for a request: its id, the user, and the client's address as we can vouch for it."""

import logging

import pytest

from tests.mail import logged_events

pytestmark = pytest.mark.django_db


def _finished(client, caplog, **headers) -> dict:
    caplog.set_level(logging.INFO)
    assert client.get("/", REMOTE_ADDR="10.0.0.9", **headers).status_code == 200
    return logged_events(caplog)["request_finished"]


def test_a_request_is_logged_with_its_id_user_and_the_peer_address(client, mailbox, caplog):
    client.force_login(mailbox.user)

    line = _finished(client, caplog, HTTP_X_FORWARDED_FOR="6.6.6.6")

    # Without a load balancer of ours in front, a forwarding header is the client's own claim.
    assert line["ip"] == "10.0.0.9"
    assert line["user_id"] == mailbox.user.id
    assert line["code"] == 200
    assert len(line["request_id"]) == 36


def test_behind_our_proxy_the_address_it_appended_is_the_client(client, mailbox, caplog, settings):
    settings.BEHIND_TLS_PROXY = True
    client.force_login(mailbox.user)

    # The client wrote 6.6.6.6 itself; the load balancer appended the address it saw.
    line = _finished(client, caplog, HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")

    assert line["ip"] == "203.0.113.7"


def test_behind_our_proxy_without_a_forwarding_header_the_peer_is_the_client(client, mailbox, caplog, settings):
    settings.BEHIND_TLS_PROXY = True
    client.force_login(mailbox.user)

    assert _finished(client, caplog)["ip"] == "10.0.0.9"
