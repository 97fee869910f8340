"""Messages for the conversation tests: HTML bodies, inline images, attachments, replies."""

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from tests.conftest import REPO_ROOT

# An HTML newsletter as marketing tools write them: a <style> sheet with resets, layout classes,
# media queries, web fonts, tracking images and a few hostile declarations.
NEWSLETTER_HTML = (REPO_ROOT / "tests" / "fixtures" / "html" / "newsletter.html").read_text(encoding="utf-8")
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# A 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def conversation_message(
    n: int,
    *,
    to: str,
    thread: str = "conv",
    sender: str = "Carol <carol@example.org>",
    text: str = "",
    html: str = "",
    inline_png_cid: str = "",
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    auth: str = "",
) -> bytes:
    """Message ``n`` of a thread: each one replies to the one before it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Quarterly plans" if n == 0 else "Re: Quarterly plans"
    msg["Message-ID"] = f"<{thread}-{n}@example.org>"
    msg["Date"] = (START + timedelta(minutes=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    if auth:
        msg["Authentication-Results"] = auth
    if n:
        msg["In-Reply-To"] = f"<{thread}-{n - 1}@example.org>"
        msg["References"] = " ".join(f"<{thread}-{i}@example.org>" for i in range(n))
    msg.set_content(text or f"Plain body of message {n}")
    if html:
        msg.add_alternative(html, subtype="html")
        if inline_png_cid:
            msg.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid=f"<{inline_png_cid}>")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(msg)
