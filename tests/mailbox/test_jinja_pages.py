"""The pages rendered with Jinja2 (thread lists, conversation): the same chrome as the pages of
Django's engine, protections on, one CSRF token per page that the server accepts."""

import gc
import importlib
import re

import pytest
from django.test import Client
from django.urls import reverse

from mailbox.models import Label
from mailbox.services import message_import_raw
from tests.mail import raw_message

pytestmark = pytest.mark.django_db


def _topbar(html: str) -> str:
    return re.search(r'<header class="topbar">.*?</header>', html, re.DOTALL).group(0)


def _without_tokens(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "TOKEN", html)


def _message(mailbox):
    return message_import_raw(
        mailbox=mailbox, raw=raw_message("j@x", "Jinja <b>page</b>"), source_tag="t", label_roles=(Label.Role.INBOX,)
    ).message


def test_the_jinja_pages_have_the_chrome_of_the_django_pages(client, mailbox):
    message = _message(mailbox)
    client.force_login(mailbox.user)
    django_page = client.get(reverse("settings")).content.decode()  # templates/base.html

    for url in (reverse("inbox"), reverse("thread_detail", args=[message.thread_id])):
        page = client.get(url).content.decode()
        assert _without_tokens(_topbar(page)) == _without_tokens(_topbar(django_page))
        assert page.count('<link rel="stylesheet" href="/static/mailsite/mailsite.css">') == 1
        assert page.count('<script src="/static/mailbox/app.js" defer></script>') == 1
        assert "<b>page</b>" not in page
        assert "Jinja &lt;b&gt;page&lt;/b&gt;" in page


def test_the_jinja_pages_keep_the_csp_framing_and_nosniff_headers(client, mailbox):
    message = _message(mailbox)
    client.force_login(mailbox.user)

    for url in (reverse("inbox"), reverse("thread_detail", args=[message.thread_id])):
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
