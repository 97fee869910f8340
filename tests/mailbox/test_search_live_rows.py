"""A search results page keeps its rows on live updates: its rows are refetched with the list key
"search", which answers for any thread of the mailbox, even one in Trash or Spam that ``in:trash``
or ``in:anywhere`` found and no other list but its folder shows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
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


def test_a_search_page_takes_its_live_cursor_before_its_rows(client, mailbox):
    """A change committed between the two reads must come back in the page's catch-up: the
    cursor (a snapshot) is read first, so it cannot count that change as seen."""
    client.force_login(mailbox.user)

    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("search"), {"q": "anything"}).status_code == 200

    statements = [q["sql"] for q in captured.captured_queries]
    cursor_at = next(i for i, sql in enumerate(statements) if "pg_current_snapshot" in sql)
    rows_at = next(i for i, sql in enumerate(statements) if "threads_thread" in sql)
    assert cursor_at < rows_at
