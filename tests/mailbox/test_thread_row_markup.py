"""A list row, as a full page shows it and as a live update fetches it: one markup, text escaped."""

import re

import pytest
from django.urls import reverse

from mailbox.models import Label
from mailbox.services import message_import_raw
from mailbox.services.bulk import threads_action_apply
from mailbox.services.preferences import user_label_create
from tests.mail import raw_message
from threads.models import Thread


def _thread(mailbox, key: str, subject: str, replier: str = "Dan <dan@example.org>") -> Thread:
    message = message_import_raw(
        mailbox=mailbox, raw=raw_message(f"{key}@x", subject), source_tag="t", label_roles=(Label.Role.INBOX,)
    ).message
    message_import_raw(
        mailbox=mailbox,
        raw=raw_message(f"{key}-reply@x", f"Re: {subject}", in_reply_to=f"{key}@x", sender=replier),
        source_tag="t",
        label_roles=(Label.Role.INBOX,),
    )
    return Thread.objects.get(pk=message.thread_id)


def _row_in(page: str, thread_id: int) -> str:
    found = re.search(rf'<li class="thread[^"]*" id="thread-{thread_id}".*?</li>\n', page, re.DOTALL)
    assert found is not None
    return found.group(0)


@pytest.mark.django_db
def test_a_row_is_the_same_html_in_the_page_and_in_a_live_update(client, mailbox):
    hostile = _thread(
        mailbox, "x", '<script>alert("s")</script> & co', replier='"<img src=x onerror=alert(1)>" <e@x.org>'
    )
    plain = _thread(mailbox, "p", "Plain")
    chip = user_label_create(mailbox=mailbox, name="<b>Work</b>", colour="#188038")
    threads_action_apply(mailbox=mailbox, action="add_label", thread_ids=[hostile.id], label=chip)
    threads_action_apply(mailbox=mailbox, action="star", thread_ids=[hostile.id])
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    client.force_login(mailbox.user)

    page = client.get(reverse("inbox")).content.decode()
    for thread in (hostile, plain):
        live = client.get(reverse("thread_row", args=[thread.id]), {"label": inbox.id}).content.decode()
        assert _row_in(page, thread.id) == live
    row = _row_in(page, hostile.id)
    assert "<script>" not in row
    assert "<b>" not in row
    assert "<img" not in row
    assert '<span class="senders">Carol, &lt;img</span>' in row  # the replier, by the first word of their name
    assert "Body of Re: &lt;script&gt;" in row  # the snippet
    assert "&lt;script&gt;alert(&#34;s&#34;)&lt;/script&gt; &amp; co" in row
    assert f'<span class="label-chip chip-188038" data-label="{chip.id}">&lt;b&gt;Work&lt;/b&gt;</span>' in row
    assert 'class="star on" aria-pressed="true"' in row
    assert '<span class="count" title="2 messages">2</span>' in row
    assert 'class="star" aria-pressed="false"' in _row_in(page, plain.id)
