"""The pages, all rendered with Jinja2 on one base template: the same chrome everywhere, protections
on, one CSRF token per page that the server accepts."""

import gc
import importlib
import re

import pytest
from django.template import TemplateDoesNotExist, engines
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailbox.models import Label
from mailbox.rows import short_date
from mailbox.services import message_import_raw
from mailbox.services.drafts import DraftFields, draft_create
from tests.mail import raw_message
from tests.threads.builders import deliver
from threads.models import Thread

pytestmark = pytest.mark.django_db


def _message(mailbox):
    return message_import_raw(
        mailbox=mailbox, raw=raw_message("j@x", "Jinja <b>page</b>"), source_tag="t", label_roles=(Label.Role.INBOX,)
    ).message


def test_the_pages_share_one_chrome_and_escape_what_mail_says(client, mailbox):
    message = _message(mailbox)
    client.force_login(mailbox.user)

    for url in (reverse("inbox"), reverse("thread_detail", args=[message.thread_id]), reverse("settings")):
        page = client.get(url).content.decode()
        assert page.count('<header class="topbar">') == 1
        assert page.count('<link rel="stylesheet" href="/static/mailsite/mailsite.css">') == 1
        assert page.count('<script src="/static/mailbox/app.js" defer></script>') == 1
        assert "<b>page</b>" not in page
    assert "Jinja &lt;b&gt;page&lt;/b&gt;" in client.get(reverse("inbox")).content.decode()


def test_no_page_is_left_on_a_django_base_template():
    with pytest.raises(TemplateDoesNotExist):
        engines["django"].get_template("base.html")


def test_the_login_page_sets_the_csrf_cookie_its_form_needs(mailbox):
    mailbox.user.set_password("pw")
    mailbox.user.save()
    browser = Client(enforce_csrf_checks=True)

    page = browser.get(reverse("login")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert "csrftoken" in browser.cookies
    data = {"username": mailbox.user.get_username(), "password": "pw", "csrfmiddlewaretoken": token}
    assert browser.post(reverse("login"), data).status_code == 302
    assert browser.get(reverse("inbox")).status_code == 200


def test_the_merge_page_shows_each_conversations_senders_and_date_as_its_row_does(client, mailbox):
    old = deliver(mailbox, "old@x", "Old <plans>", sender="Ann Old <ann@example.org>")
    new = deliver(mailbox, "new@x", "New plans", date="Tue, 03 Nov 2026 10:00:00 +0000")
    client.force_login(mailbox.user)

    page = client.post(reverse("threads_merge"), {"next": "/", "thread": [old.thread_id, new.thread_id]})

    html = page.content.decode()
    assert '<span class="subject">Old &lt;plans&gt;</span>' in html
    assert '<span class="senders">Ann Old</span>' in html
    assert '<span class="senders">Carol</span>' in html
    assert '<span class="count">1 message</span>' in html
    last = Thread.objects.get(pk=new.thread_id).last_message_at
    assert f'<time datetime="{timezone.localtime(last).isoformat()}">{short_date(last)}</time>' in html


def test_the_drafts_page_cuts_long_subjects_as_django_did(client, mailbox):
    draft_create(mailbox=mailbox, fields=DraftFields(subject="s" * 150))
    client.force_login(mailbox.user)

    html = client.get(reverse("drafts")).content.decode()

    assert f'<span class="draft-subject">{"s" * 99}…</span>' in html
    assert '<span class="draft-to">(no recipients)</span>' in html


def test_the_jinja_pages_keep_the_csp_framing_and_nosniff_headers(client, mailbox):
    message = _message(mailbox)
    client.force_login(mailbox.user)

    for url in (reverse("inbox"), reverse("thread_detail", args=[message.thread_id]), reverse("settings")):
        response = client.get(url)
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"


def test_a_page_carries_one_csrf_token_in_all_its_forms_and_the_server_takes_it(mailbox):
    message = _message(mailbox)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(mailbox.user)

    page = browser.get(reverse("inbox")).content.decode()
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert len(tokens) == 4  # log out, toolbar, star, unstar
    assert len(set(tokens)) == 1
    data = {"csrfmiddlewaretoken": tokens[0], "action": "star", "thread": message.thread_id, "next": "/"}
    assert browser.post(reverse("threads_action"), data).status_code == 302
    refused = browser.post(reverse("threads_action"), {**data, "csrfmiddlewaretoken": "x" * 64})
    assert refused.status_code == 403


def test_the_web_processes_freeze_what_they_loaded_before_the_first_request():
    gc.unfreeze()
    try:
        importlib.reload(importlib.import_module("mailsite.wsgi"))
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
