"""manage.py search_backfill indexes mail delivered before search existed."""

from io import StringIO

import pytest
from django.core.management import call_command

from mailbox.models import Message
from mailbox.search import thread_search
from mailbox.services import message_import_raw
from tests.mail import raw_message


@pytest.mark.django_db
def test_command_indexes_messages_without_documents(mailbox):
    for n in range(3):
        message_import_raw(mailbox=mailbox, raw=raw_message(f"old-{n}@example.org", f"Old news {n}"), source_tag="t")
    Message.objects.filter(mailbox=mailbox).update(search_document=None, address_document=None)
    out = StringIO()

    call_command("search_backfill", "--batch-size", "2", stdout=out)

    assert out.getvalue().strip() == "indexed 3 messages"
    assert len(thread_search(mailbox=mailbox, query="news from:carol").threads) == 3
