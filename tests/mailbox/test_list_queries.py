"""The thread list page's reads: the page's SQL agrees with the ORM's lists, and the page costs a
fixed handful of queries (the user with the mailbox, the labels with their counts, the rows)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from mailbox import selectors
from mailbox.models import Label, ThreadLabel
from mailbox.rows import short_date
from mailbox.services import message_import_raw
from mailbox.services.bulk import threads_action_apply
from mailbox.services.preferences import user_label_create
from tests.mail import raw_message
from threads.models import Thread


def _threads(mailbox, count: int) -> list[Thread]:
    threads = []
    for n in range(count):
        message = message_import_raw(
            mailbox=mailbox, raw=raw_message(f"q{n}@x", f"Subject {n}"), source_tag="t", label_roles=("inbox",)
        ).message
        threads.append(Thread.objects.get(pk=message.thread_id))
    return threads


def _all_pages(mailbox, view) -> list[int]:
    """Every thread id of a list, walking older pages, then the same walk back by newer pages."""
    page = selectors.thread_list(mailbox=mailbox, view=view)
    pages = [page]
    while page.older is not None:
        page = selectors.thread_list(mailbox=mailbox, view=view, older_than=page.older)
        pages.append(page)
    back = pages[-1]
    while back.newer is not None:
        back = selectors.thread_list(mailbox=mailbox, view=view, newer_than=back.newer)
    assert [t.id for t in back.threads] == [t.id for t in pages[0].threads]
    return [t.id for p in pages for t in p.threads]


@pytest.mark.django_db
def test_the_page_sql_lists_exactly_the_threads_the_orm_list_holds(mailbox, other_mailbox, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    threads = _threads(mailbox, 7)
    _threads(other_mailbox, 2)
    work = user_label_create(mailbox=mailbox, name="Work", colour="#188038")
    # threads[2] and [4], labelled and starred, go to Spam and Trash: out of Work and Starred too.
    labelled = [threads[n].id for n in (0, 2, 3, 4)]
    threads_action_apply(mailbox=mailbox, action="add_label", thread_ids=labelled, label=work)
    threads_action_apply(mailbox=mailbox, action="star", thread_ids=[threads[n].id for n in (1, 2, 3, 4)])
    threads_action_apply(mailbox=mailbox, action="spam", thread_ids=[threads[2].id])
    threads_action_apply(mailbox=mailbox, action="trash", thread_ids=[threads[4].id])
    labels = {label.role or label.name: label for label in selectors.label_list(mailbox=mailbox)}
    views = [selectors.ThreadListView(kind=kind) for kind in ("all", "starred")] + [
        selectors.ThreadListView(kind="label", label=labels[key]) for key in ("inbox", "Work", "spam", "trash")
    ]
    every = Thread.objects.filter(mailbox_id=mailbox.id)
    for view in views:
        listed = _all_pages(mailbox, view)
        held = [t.id for t in every if selectors.thread_in_list(mailbox=mailbox, view=view, thread_id=t.id)]
        assert sorted(listed) == sorted(held), view
        assert len(listed) == len(set(listed))
    for view in views[:2] + views[3:4]:  # All mail, Starred and Work leave Spam and Trash out
        assert threads[2].id not in _all_pages(mailbox, view)
        assert threads[4].id not in _all_pages(mailbox, view)
    assert sorted(_all_pages(mailbox, views[3])) == sorted([threads[0].id, threads[3].id])


@pytest.mark.django_db
def test_a_row_carries_its_labels_shown_in_label_order_and_the_times_exactly(client, mailbox):
    thread = _threads(mailbox, 1)[0]
    for name, position in (("Alpha", 2), ("Zeta", 1)):  # created out of position order, and not by name
        label = user_label_create(mailbox=mailbox, name=name, colour="#188038")
        Label.objects.filter(pk=label.pk).update(position=position)
        threads_action_apply(mailbox=mailbox, action="add_label", thread_ids=[thread.id], label=label)
    stamp = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    Thread.objects.filter(pk=thread.pk).update(last_message_at=stamp)
    ThreadLabel.objects.filter(thread_id=thread.pk).update(last_message_at=stamp + timedelta(microseconds=1))
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)

    page = selectors.thread_list(mailbox=mailbox, view=selectors.ThreadListView(kind="label", label=inbox))

    (row,) = page.threads
    names = dict(Label.objects.filter(mailbox=mailbox).values_list("id", "name"))
    assert sorted(names[i] for i in row.label_ids) == ["Alpha", inbox.name, "Zeta"]
    client.force_login(mailbox.user)
    chips = re.findall(r'<span class="label-chip[^"]*" data-label="\d+">(\w+)</span>', client.get("/").content.decode())
    assert chips == ["Zeta", "Alpha"]  # the user labels, by position; not the list's own
    assert row.last_message_at == stamp
    cursor = selectors.Cursor(stamp + timedelta(microseconds=1), thread.id)
    after = selectors.thread_list(
        mailbox=mailbox, view=selectors.ThreadListView(kind="label", label=inbox), older_than=cursor
    )
    assert after.threads == []


@pytest.mark.django_db
def test_the_inbox_page_reads_the_user_and_mailbox_labels_and_rows_in_three_queries(client, mailbox):
    threads = _threads(mailbox, 4)
    for n in range(3):
        label = user_label_create(mailbox=mailbox, name=f"L{n}", colour="#188038")
        threads_action_apply(mailbox=mailbox, action="add_label", thread_ids=[t.id for t in threads], label=label)
    client.force_login(mailbox.user)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("inbox"))

    assert response.status_code == 200
    # The session comes from the cache when there is one (Redis), else from its table.
    reads = [q["sql"] for q in queries.captured_queries if "django_session" not in q["sql"]]
    assert len(reads) == 3, reads
    assert "<title>Inbox (4)" in response.content.decode()


@pytest.mark.django_db
def test_the_request_user_comes_with_the_mailbox(client, mailbox):
    client.force_login(mailbox.user)
    request = RequestFactory().get("/")
    request.session = client.session
    user = get_user(request)

    with CaptureQueriesContext(connection) as queries:
        found = selectors.mailbox_get_for_user(user=user)

    assert found == mailbox
    assert queries.captured_queries == []


@pytest.mark.django_db
def test_a_user_without_a_mailbox_has_none(django_user_model):
    user = django_user_model.objects.create_user(username="nobox", password="x" * 12)
    assert selectors.mailbox_get_for_user(user=user) is None


def test_short_dates_are_the_date_formats_they_replace():
    now = timezone.localtime()
    for value in (now, now - timedelta(days=40), now - timedelta(days=800), now.replace(hour=0, minute=5)):
        local = timezone.localtime(value)
        if local.date() == now.date():
            expected = date_format(local, "H:i")
        elif local.year == now.year:
            expected = date_format(local, "j M")
        else:
            expected = date_format(local, "j M Y")
        assert short_date(value) == expected
