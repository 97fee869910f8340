"""A search results page keeps its rows on live updates: its rows are refetched with the list key
"search", which answers for any thread of the mailbox, even one in Trash or Spam that ``in:trash``
or ``in:anywhere`` found and no other list but its folder shows."""

import pytest
from django.urls import reverse

from mailbox.models import Message
from mailbox.services import message_import_raw, messages_mark_read
from mailbox.services.bulk import threads_action_apply
from tests.mail import raw_message

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("action", "query"), [("trash", "in:trash"), ("spam", "in:anywhere")])
def test_a_result_in_trash_or_spam_keeps_its_row_when_read_elsewhere(client, mailbox, other_mailbox, action, query):
    raw = raw_message("gone@x", "Binned report")
    thread = message_import_raw(mailbox=mailbox, raw=raw, source_tag="t", label_roles=("inbox",)).message.thread_id
    threads_action_apply(mailbox=mailbox, action=action, thread_ids=[thread])
    client.force_login(mailbox.user)
    page = client.get(reverse("search"), {"q": f"{query} binned"}).content.decode()
    assert 'data-list="search"' in page
    assert f'data-thread="{thread}"' in page

    # Read in another tab: this page refetches the row, as app.js does for its list key.
    messages_mark_read(
        mailbox=mailbox, message_ids=list(Message.objects.filter(thread_id=thread).values_list("id", flat=True))
    )
    response = client.get(reverse("thread_row", args=[thread]), {"label": "search", "back": "/search/?q=x"})

    assert response.status_code == 200
    assert f'data-thread="{thread}"' in response.content.decode()
    assert 'class="thread unread' not in response.content.decode()
    client.force_login(other_mailbox.user)
    assert client.get(reverse("thread_row", args=[thread]), {"label": "search"}).status_code == 404
