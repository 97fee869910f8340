"""Raw RFC 5322 messages for tests, built the way a real client would write them."""

from email.message import EmailMessage

import pytest


def raw_message(
    message_id: str,
    subject: str,
    *,
    in_reply_to: str = "",
    sender: str = "Carol <carol@example.org>",
    to: str = "alice@example.test",
    date: str = "Mon, 02 Nov 2026 10:00:00 +0000",
    attachment: bytes = b"",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    msg["Date"] = date
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    msg.set_content(f"Body of {subject}")
    if attachment:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="invoice.pdf")
    return bytes(msg)


def logged_events(caplog: pytest.LogCaptureFixture) -> dict[str, dict]:
    """The structlog events the standard library's logging received, by event name (the last of
    each), with the context variables merged in: what the JSON log lines are rendered from."""
    return {record.msg["event"]: record.msg for record in caplog.records if isinstance(record.msg, dict)}
