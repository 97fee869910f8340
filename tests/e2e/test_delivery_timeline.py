"""The delivery timeline of a sent message, live in the conversation: tracking webhooks POSTed over
HTTP to the live server (the real webhook view, the channel layer, the page's websocket) change
each recipient's line in place, without a reload."""

import base64
import json
import re
import urllib.request

from playwright.sync_api import expect

from delivery.models import OutboundDelivery
from mailbox.services.sending import OutgoingMail, message_send
from tests.delivery.test_outbound_tracking import postmark_bounce
from tests.e2e.conftest import log_in, off_loop, screenshot

SECRET = "mailsite:timeline-secret"


def _postmark_delivered(delivery: OutboundDelivery) -> dict:
    """Postmark's delivery webhook (postmarkapp.com/developer/webhooks/delivery-webhook)."""
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": "00000000-0000-0000-0000-000000000001",
        "Recipient": delivery.recipient,
        "Tag": "sent",
        "DeliveredAt": "2026-11-28T08:00:01Z",
        "Details": "smtp;250 2.0.0 OK 1795000000 accepted",
        "Metadata": {"delivery_id": str(delivery.id)},
    }


def _post_tracking(server: str, payload: dict) -> int:
    """POST the webhook over HTTP to the live server, as Postmark does."""
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    request = urllib.request.Request(
        f"{server}/anymail/postmark/tracking/",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": auth},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def _line(page, delivery: OutboundDelivery):
    return page.locator(f'li.delivery[data-delivery="{delivery.id}"]')


def test_the_timeline_follows_tracking_webhooks_without_reload(page, asgi_server, tripwire, mailbox, settings, request):
    settings.ANYMAIL = {"WEBHOOK_SECRET": [SECRET]}
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.MAILSITE_UNDO_SEND_SECONDS = 0
    mail = OutgoingMail(
        from_address=mailbox.address, to=["carol@example.org", "dan@example.org"], subject="Timeline", text="Hello"
    )
    sent = off_loop(message_send, mailbox=mailbox, mail=mail)
    carol, dan = off_loop(lambda: list(OutboundDelivery.objects.filter(message_id=sent.id).order_by("recipient")))
    assert (carol.status, dan.status) == ("sent", "sent")
    log_in(page, mailbox.address)
    page.goto(f"/t/{sent.thread_id}/")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    page.evaluate("window.__noReload = true")
    expect(_line(page, carol)).to_have_class(re.compile(r"\bdelivery-sent\b"))
    expect(_line(page, dan)).to_have_class(re.compile(r"\bdelivery-sent\b"))

    assert _post_tracking(asgi_server, _postmark_delivered(carol)) == 200
    expect(_line(page, carol)).to_have_class(re.compile(r"\bdelivery-delivered\b"))
    expect(_line(page, carol).locator(".response")).to_contain_text(["smtp;250 2.0.0 OK"])
    expect(_line(page, dan)).to_have_class(re.compile(r"\bdelivery-sent\b"))
    screenshot(page, request.node.name, "delivered")

    assert _post_tracking(asgi_server, postmark_bounce(dan)) == 200
    expect(_line(page, dan)).to_have_class(re.compile(r"\bdelivery-bounced\b"))
    expect(_line(page, dan).locator(".problem")).to_have_text(
        re.compile(r"^Not delivered to dan@example\.org: smtp;550")
    )

    assert page.evaluate("window.__noReload") is True  # changed in place, never reloaded
    assert tripwire.console_errors == []
