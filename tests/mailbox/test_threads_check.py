"""The consistency command: recount every thread from its messages, report drift, repair it."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from mailbox.models import ThreadLabel
from mailsite.models import DomainEvent
from tests.threads.builders import assert_no_drift, deliver, published_capture, reply, thread_events, thread_of
from threads.models import Thread
from threads.services import thread_create

pytestmark = pytest.mark.django_db


def _check(*args: str) -> str:
    out = StringIO()
    call_command("threads_check", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def conversation(mailbox):
    a = deliver(mailbox, "a@x", "Budget 2027")
    return a, reply(mailbox, "b@x", a, sender="Dave <dave@example.org>")


def test_a_mailbox_kept_by_the_services_has_no_drift(mailbox, other_mailbox, conversation):
    deliver(other_mailbox, "c@x", "Hello Bob", to="bob@example.test")

    assert _check().splitlines()[-1] == "checked 2 thread(s): 0 drifted"


def test_drift_in_a_summary_is_reported_by_field_and_fails_the_run(mailbox, conversation):
    thread = thread_of(conversation[0])
    # A bug elsewhere (a raw save) left the summary stale.
    Thread.objects.filter(pk=thread.pk).update(unread_count=0, snippet="stale")

    with pytest.raises(CommandError, match="1 thread"):
        _check()

    out = StringIO()
    with pytest.raises(CommandError):
        call_command("threads_check", stdout=out)
    assert f"thread {thread.pk} (mailbox {mailbox.id}): unread_count, snippet" in out.getvalue()


def test_fix_rewrites_drifted_summaries_and_label_rows(mailbox, conversation):
    thread = thread_of(conversation[0])
    Thread.objects.filter(pk=thread.pk).update(message_count=7, participants=[])
    ThreadLabel.objects.filter(thread_id=thread.pk).delete()

    assert _check("--fix").splitlines()[-1] == "checked 1 thread(s): 1 repaired"

    assert_no_drift(mailbox)
    assert thread_of(conversation[0]).message_count == 2
    assert ThreadLabel.objects.get(thread_id=thread.pk).message_count == 2
    assert _check().splitlines()[-1] == "checked 1 thread(s): 0 drifted"
    repaired = thread_events(mailbox, DomainEvent.Type.THREAD_REPAIRED)
    assert repaired[thread.pk]["fields"] == ["message_count", "participants", "labels"]


def test_a_repair_is_pushed_to_open_tabs_once_committed(
    mailbox, conversation, monkeypatch, django_capture_on_commit_callbacks
):
    thread = thread_of(conversation[0])
    empty = thread_create(mailbox_id=mailbox.id, subject="nothing here")
    Thread.objects.filter(pk=thread.pk).update(unread_count=0)
    pushed = published_capture(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        _check("--fix")

    events = thread_events(mailbox, DomainEvent.Type.THREAD_REPAIRED)
    assert pushed == [
        {"type": "thread.updated", "thread_id": thread.pk, "event_id": events[thread.pk]["event_id"]},
        {
            "type": "thread.removed",
            "thread_id": empty.pk,
            "merged_into": None,
            "event_id": events[empty.pk]["event_id"],
        },
    ]


def test_an_empty_thread_is_reported_and_removed(mailbox, conversation):
    empty = thread_create(mailbox_id=mailbox.id, subject="nothing here")

    with pytest.raises(CommandError):
        _check()
    _check("--fix")

    assert not Thread.objects.filter(pk=empty.pk).exists()
    assert thread_of(conversation[0]).message_count == 2


def test_one_mailbox_can_be_checked_alone_in_small_batches(mailbox, other_mailbox, conversation):
    theirs = deliver(other_mailbox, "c@x", "Hello Bob", to="bob@example.test")
    Thread.objects.filter(pk=theirs.thread_id).update(unread_count=0)

    assert _check("--mailbox", str(mailbox.id), "--batch", "1").splitlines()[-1] == "checked 1 thread(s): 0 drifted"
    with pytest.raises(CommandError):
        _check("--mailbox", str(other_mailbox.id))
