"""A body's height, estimated from its text (quotes as folded): measured at delivery, recorded on first display
for older mail, and carried by the conversation page to size the body's iframe."""

import re

import pytest
from django.urls import reverse

from mailbox.models import Message
from mailbox.rendering.height import MAX_LINES, body_lines_estimate
from mailbox.services import message_import_raw
from tests.mailbox.conversation_mail import conversation_message

QUOTE = "\n".join(f"> line {i} of the message before" for i in range(40))


def test_a_short_reply_counts_its_own_lines_and_one_for_its_folded_quote():
    assert body_lines_estimate(text=f"Sounds good.\nSee you then.\n\nOn Mon, Carol wrote:\n{QUOTE}\n", html="") <= 5


def test_long_lines_wrap_and_long_bodies_are_capped():
    assert body_lines_estimate(text="word " * 160, html="") == 10  # 800 characters
    assert body_lines_estimate(text="line\n" * 2000, html="") == MAX_LINES


def _html(html: str) -> int:
    return body_lines_estimate(text="the text part", html=html)


def test_html_counts_its_blocks_and_images_and_not_its_quote_or_styles():
    assert _html('<P>one</P>\n<p>two</p><img src="cid:x" HEIGHT="220">') == 3 + 10  # 2 lines, and their margins
    assert _html("<div>a</div><div>b</div>" * 20) > _html("<p>a</p>")
    assert _html("<style>p { color: red }\n" * 50 + "</style><p>Thanks</p>") == 2
    quoted = '<p>Thanks</p><div class="gmail_quote">' + "<p>earlier</p>" * 50 + "</div>"
    assert _html(quoted) == 2 + 1  # the folded quote is its one summary line


@pytest.mark.django_db
def test_delivery_measures_and_the_page_sizes_the_frame(client, mailbox):
    raw = conversation_message(0, to=mailbox.address, text=f"Sounds good.\n\nOn Mon, Carol wrote:\n{QUOTE}\n")
    message = message_import_raw(mailbox=mailbox, raw=raw, source_tag="t").message
    client.force_login(mailbox.user)

    html = client.get(reverse("thread_detail", args=[message.thread_id])).content.decode()

    assert Message.objects.get(pk=message.pk).body_lines == 3
    assert re.search(r'<iframe class="message-body"[^>]* data-lines="3"', html)


@pytest.mark.django_db
def test_older_mail_is_measured_when_first_shown_and_gets_the_default_until_then(client, mailbox):
    raw = conversation_message(0, to=mailbox.address, text="\n".join(f"line {i}" for i in range(100)))
    message = message_import_raw(mailbox=mailbox, raw=raw, source_tag="t").message
    Message.objects.filter(pk=message.pk).update(body_lines=None)  # delivered before delivery measured
    client.force_login(mailbox.user)
    page = reverse("thread_detail", args=[message.thread_id])

    assert "data-lines" not in client.get(page).content.decode()
    client.get(reverse("message_body", args=[message.id]))

    assert Message.objects.get(pk=message.pk).body_lines == 100
    assert "data-lines" not in client.get(page).content.decode()  # taller than the steps: the default height
