"""The conversation view, the body document and the attachment routes, through the test client."""

import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from mailbox.models import Label, Message, RemoteImageSender, ThreadLabel
from mailbox.services import message_import_raw, messages_label_add, messages_mark_read
from mailbox.services.bulk import threads_action_apply
from mailbox.services.preferences import user_label_create
from mailbox.views_conversation import _date_full
from mailsite.models import DomainEvent
from tests.mail import raw_message
from tests.mailbox.conversation_mail import PNG, conversation_message
from threads.models import Thread

pytestmark = pytest.mark.django_db


def _thread(mailbox, count: int, **kwargs) -> list[Message]:
    delivered = [
        message_import_raw(
            mailbox=mailbox, raw=conversation_message(n, to=mailbox.address, **kwargs), source_tag="test"
        )
        for n in range(count)
    ]
    return [d.message for d in delivered]


def test_conversation_lists_every_message_in_order_and_reading_changes_nothing(client, mailbox):
    messages = _thread(mailbox, 3)
    messages_mark_read(mailbox=mailbox, message_ids=[messages[0].id])
    client.force_login(mailbox.user)

    response = client.get(reverse("thread_detail", args=[messages[0].thread_id]))

    assert response.status_code == 200
    cards = response.context["cards"]
    assert [c.message.id for c in cards] == [m.id for m in messages]
    # The read first message is collapsed; unread ones and the latest are open.
    assert [c.expanded for c in cards] == [False, True, True]
    html = response.content.decode()
    assert f'data-src="{reverse("message_body", args=[messages[0].id])}"' in html
    assert f'src="{reverse("message_body", args=[messages[2].id])}"' in html
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in html
    assert "allow-scripts" not in html
    assert "allow-same-origin" not in html
    # A GET is safe (prefetchers, previews): the page names its unread messages for
    # conversation.js to mark read by POST, and offers the same POST as a button without JS.
    assert Message.objects.filter(thread_id=messages[0].thread_id, is_read=False).count() == 2
    assert Thread.objects.get(pk=messages[0].thread_id).unread_count == 2
    mark_read = reverse("thread_mark_read", args=[messages[0].thread_id])
    assert f'data-unread="{messages[1].id},{messages[2].id}" data-mark-read-url="{mark_read}"' in html
    noscript = re.search(r"<noscript><form .*?</form></noscript>", html).group(0)
    assert f'action="{mark_read}"' in noscript
    assert re.findall(r'name="message" value="(\d+)"', noscript) == [str(messages[1].id), str(messages[2].id)]
    assert "csrfmiddlewaretoken" in noscript


def test_a_read_conversation_has_nothing_to_mark(client, mailbox):
    messages = _thread(mailbox, 2)
    messages_mark_read(mailbox=mailbox, message_ids=[m.id for m in messages])
    client.force_login(mailbox.user)

    html = client.get(reverse("thread_detail", args=[messages[0].thread_id])).content.decode()

    assert "data-unread" not in html
    assert "Mark as read" not in html


def _read_events(mailbox) -> int:
    return DomainEvent.objects.filter(mailbox_id=mailbox.id, event_type=DomainEvent.Type.MESSAGES_READ).count()


def test_marking_read_by_post_marks_what_the_page_showed_once(client, mailbox):
    messages = _thread(mailbox, 3)
    thread_id = messages[0].thread_id
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    client.force_login(mailbox.user)
    url = reverse("thread_mark_read", args=[thread_id])
    shown = [messages[0].id, messages[1].id]  # the third arrived after the page was rendered

    response = client.post(url, {"message": shown}, headers={"accept": "application/json"})

    assert response.status_code == 204
    assert set(Message.objects.filter(thread_id=thread_id, is_read=True).values_list("id", flat=True)) == set(shown)
    assert Thread.objects.get(pk=thread_id).unread_count == 1
    assert ThreadLabel.objects.get(thread_id=thread_id, label=inbox).unread_count == 1
    assert _read_events(mailbox) == 1  # one thread.updated for open tabs, after commit
    # Again (a retry, a second tab): nothing changes, no event.
    assert client.post(url, {"message": shown}, headers={"accept": "application/json"}).status_code == 204
    assert _read_events(mailbox) == 1
    assert Thread.objects.get(pk=thread_id).unread_count == 1


def test_marking_read_without_javascript_returns_to_the_conversation(client, mailbox):
    messages = _thread(mailbox, 1)
    client.force_login(mailbox.user)

    response = client.post(reverse("thread_mark_read", args=[messages[0].thread_id]), {"message": [messages[0].id]})

    assert response.status_code == 302
    assert response["Location"] == reverse("thread_detail", args=[messages[0].thread_id])
    assert Message.objects.get(pk=messages[0].id).is_read


def test_marking_read_names_only_this_threads_messages(client, mailbox, other_mailbox):
    mine = _thread(mailbox, 1)[0]
    elsewhere = _thread(mailbox, 1, thread="elsewhere")[0]
    theirs = message_import_raw(
        mailbox=other_mailbox, raw=conversation_message(0, to=other_mailbox.address), source_tag="test"
    ).message
    client.force_login(mailbox.user)
    url = reverse("thread_mark_read", args=[mine.thread_id])
    named = [elsewhere.id, theirs.id, "x", "-1"]

    response = client.post(url, {"message": named}, headers={"accept": "application/json"})

    assert response.status_code == 204
    assert Message.objects.filter(is_read=True).count() == 0
    assert client.post(url, {"message": ["x"]}).status_code == 400
    assert client.post(url).status_code == 400
    assert client.get(url).status_code == 405
    theirs_url = reverse("thread_mark_read", args=[theirs.thread_id])
    assert client.post(theirs_url, {"message": [theirs.id]}).status_code == 404


def test_marking_read_needs_the_csrf_token(mailbox):
    message = _thread(mailbox, 1)[0]
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(mailbox.user)
    url = reverse("thread_mark_read", args=[message.thread_id])

    assert browser.post(url, {"message": [message.id]}).status_code == 403
    assert not Message.objects.get(pk=message.id).is_read
    page = browser.get(reverse("thread_detail", args=[message.thread_id])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert browser.post(url, {"message": [message.id], "csrfmiddlewaretoken": token}).status_code == 302
    assert Message.objects.get(pk=message.id).is_read


def test_sender_details_show_authentication_results_and_join_reason(client, mailbox, settings):
    settings.MAILSITE_AUTHSERV_IDS = ["mx.example.test"]  # only our own edge's results are trusted
    auth = "mx.example.test; spf=pass smtp.mailfrom=example.org; dkim=fail header.d=example.org; dmarc=fail"
    messages = _thread(mailbox, 2, auth=auth)
    client.force_login(mailbox.user)

    html = client.get(reverse("thread_detail", args=[messages[0].thread_id])).content.decode()

    assert "SPF: pass" in html
    assert "DKIM: fail" in html
    assert "DMARC: fail" in html
    assert "carol@example.org" in html
    # Why each message is in this conversation.
    assert "Its In-Reply-To/References headers name a message of this conversation." in html
    assert "It started this conversation." in html


def test_another_users_thread_message_and_attachment_are_404(client, mailbox, other_mailbox):
    messages = _thread(mailbox, 1, attachments=(("a.pdf", "application/pdf", b"%PDF-1.4"),))
    part = messages[0].attachments.get()
    client.force_login(other_mailbox.user)

    assert client.get(reverse("thread_detail", args=[messages[0].thread_id])).status_code == 404
    assert client.get(reverse("message_body", args=[messages[0].id])).status_code == 404
    assert client.get(reverse("attachment", args=[messages[0].id, part.id])).status_code == 404
    assert client.get(reverse("thread_detail", args=[999999])).status_code == 404
    assert client.post(reverse("remote_images_always", args=[messages[0].id])).status_code == 404


def test_anonymous_is_sent_to_log_in(client, mailbox):
    messages = _thread(mailbox, 1)
    for url in (reverse("thread_detail", args=[messages[0].thread_id]), reverse("message_body", args=[messages[0].id])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_query_count_does_not_grow_with_the_thread(client, mailbox):
    short = _thread(mailbox, 2, thread="short", attachments=(("a.pdf", "application/pdf", b"%PDF"),))
    long = _thread(mailbox, 25, thread="long", attachments=(("a.pdf", "application/pdf", b"%PDF"),))
    client.force_login(mailbox.user)
    messages_mark_read(mailbox=mailbox, message_ids=[m.id for m in short + long])
    counts = []
    for messages in (short, long):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("thread_detail", args=[messages[0].thread_id])).status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1], counts
    messages_mark_read(mailbox=mailbox, message_ids=[m.id for m in short + long], is_read=False)
    unread_counts = []
    for messages in (short, long):
        with CaptureQueriesContext(connection) as captured:
            client.get(reverse("thread_detail", args=[messages[0].thread_id]))
        unread_counts.append(len(captured))
    assert unread_counts[0] == unread_counts[1], unread_counts


def test_body_document_has_its_own_csp_and_framing_rules(client, mailbox):
    messages = _thread(mailbox, 1, html="<p>Hello <b>there</b><script>alert(1)</script></p>")
    client.force_login(mailbox.user)

    response = client.get(reverse("message_body", args=[messages[0].id]))

    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'; style-src 'unsafe-inline'; img-src data: http://testserver/m/")
    assert "frame-ancestors 'self'" in csp
    assert "proxy" not in csp
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"
    body = response.content.decode()
    assert "<b>there</b>" in body
    assert "<script" not in body
    assert "alert(1)" not in body


def test_plain_text_is_escaped_before_links_are_made(client, mailbox):
    text = 'Look <img src=x onerror=alert(1)> at https://example.com/a?b=1&c=2 "now"\n\nOn Mon, Bob wrote:\n> old\n'
    messages = _thread(mailbox, 1, text=text)
    client.force_login(mailbox.user)

    body = client.get(reverse("message_body", args=[messages[0].id])).content.decode()

    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert (
        '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">'
        "https://example.com/a?b=1&amp;c=2</a>" in body
    )
    assert '<details class="quoted"><summary>Show quoted text</summary>' in body


def test_remote_images_blocked_until_asked_then_proxied(client, mailbox):
    html = '<p>Hi<img src="https://tracker.example.net/p.gif"></p>'
    messages = _thread(mailbox, 1, html=html)
    client.force_login(mailbox.user)
    url = reverse("message_body", args=[messages[0].id])

    blocked = client.get(url).content.decode()
    shown = client.get(url, {"images": "1"})

    assert "tracker.example.net" not in blocked
    assert "Show images" in blocked
    body = shown.content.decode()
    assert "tracker.example.net" not in body  # only inside the signed token
    assert re.search(r'<img src="/proxy/image/\?u=[^"]+">', body)
    assert "http://testserver/proxy/image/" in shown["Content-Security-Policy"]


def test_always_show_images_for_a_sender(client, mailbox):
    messages = _thread(mailbox, 1, html='<img src="https://img.example.net/a.png">')
    client.force_login(mailbox.user)

    response = client.post(reverse("remote_images_always", args=[messages[0].id]))

    assert response.status_code == 302
    assert RemoteImageSender.objects.filter(mailbox=mailbox, address="carol@example.org").count() == 1
    assert "/proxy/image/" in client.get(reverse("message_body", args=[messages[0].id])).content.decode()
    page = client.get(reverse("thread_detail", args=[messages[0].thread_id])).content.decode()
    assert "Always show images from" not in page


def test_mailbox_setting_always_shows_images(client, mailbox):
    mailbox.remote_images = mailbox.RemoteImages.ALWAYS
    mailbox.save(update_fields=["remote_images"])
    messages = _thread(mailbox, 1, html='<img src="https://img.example.net/a.png">')
    client.force_login(mailbox.user)

    assert "/proxy/image/" in client.get(reverse("message_body", args=[messages[0].id])).content.decode()


def test_cid_images_served_from_our_signed_route(client, mailbox):
    messages = _thread(mailbox, 1, html='<p><img src="cid:logo@example.org"></p>', inline_png_cid="logo@example.org")
    client.force_login(mailbox.user)
    body = client.get(reverse("message_body", args=[messages[0].id])).content.decode()
    src = re.search(r'<img src="([^"]+)"', body).group(1).replace("&amp;", "&")
    assert unquote(src).startswith(f"/m/{messages[0].id}/cid/logo@example.org/?s=")

    client.logout()  # the sandboxed body's image requests carry no session: the signature is enough
    image = client.get(src)
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content) == PNG
    assert image["X-Content-Type-Options"] == "nosniff"
    forged = client.get(src.split("?s=")[0] + "?s=1:forged")
    assert forged.status_code == 302  # to the login page


def test_attachments_are_downloads_with_a_safe_type(client, mailbox):
    html_attack = b"<script>alert(1)</script>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    messages = _thread(
        mailbox,
        1,
        attachments=(
            ("page.html", "text/html", html_attack),
            ("pic.svg", "image/svg+xml", svg),
            ("dot.png", "image/png", PNG),
        ),
    )
    parts = {p.filename: p for p in messages[0].attachments.all()}
    client.force_login(mailbox.user)

    for name, expected_type in (("page.html", "application/octet-stream"), ("pic.svg", "application/octet-stream")):
        response = client.get(reverse("attachment", args=[messages[0].id, parts[name].id]))
        assert response.status_code == 200
        assert response["Content-Type"] == expected_type
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]
    png = client.get(reverse("attachment", args=[messages[0].id, parts["dot.png"].id]))
    assert png["Content-Type"] == "image/png"
    assert b"".join(png.streaming_content) == PNG
    page = client.get(reverse("thread_detail", args=[messages[0].thread_id])).content.decode()
    assert 'class="thumb"' in page
    assert "page.html" in page
    # An SVG is never served inline, not even through the cid route.
    assert client.get(reverse("inline_image", args=[messages[0].id, "x"])).status_code == 404


def test_show_images_link_in_the_body_works_without_a_session(client, mailbox, other_mailbox):
    messages = _thread(mailbox, 1, html='<img src="https://img.example.net/a.png">')
    client.force_login(mailbox.user)
    body = client.get(reverse("message_body", args=[messages[0].id])).content.decode()
    link = re.search(r'<a href="(\?images=1&amp;s=[^"]+)">Show images</a>', body).group(1).replace("&amp;", "&")
    url = reverse("message_body", args=[messages[0].id]) + link
    client.logout()  # the sandboxed frame reloads itself without our cookies

    shown = client.get(url)

    assert shown.status_code == 200
    assert "/proxy/image/" in shown.content.decode()
    other = reverse("message_body", args=[messages[0].id + 1000]) + link
    assert client.get(other).status_code == 302  # the signature names one message
    assert client.get(url.replace("s=", "s=x")).status_code == 302


def test_an_attachment_name_with_control_characters_still_downloads(client, mailbox):
    raw = (
        b"From: Carol <carol@example.org>\r\nTo: alice@example.test\r\nSubject: odd name\r\n"
        b"Message-ID: <odd-name@example.org>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
        b"--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''re%0D%0Aport%09.pdf\r\n\r\n%PDF\r\n--b--\r\n"
    )
    message = message_import_raw(mailbox=mailbox, raw=raw, source_tag="test").message
    part = message.attachments.get()
    client.force_login(mailbox.user)

    response = client.get(reverse("attachment", args=[message.id, part.id]))

    assert response.status_code == 200
    assert not set("\r\n\t") & set(response["Content-Disposition"])
    assert response["Content-Disposition"].startswith('attachment; filename="re')


def test_each_message_offers_reply_reply_all_and_forward_and_the_thread_its_actions(client, mailbox):
    messages = _thread(mailbox, 2)
    client.force_login(mailbox.user)

    html = client.get(reverse("thread_detail", args=[messages[0].thread_id])).content.decode()

    for message in messages:
        for mode in ("reply", "reply_all", "forward"):
            assert f'{reverse("compose")}?reply_to={message.id}&amp;mode={mode}"' in html
    assert f'action="{reverse("threads_action")}"' in html
    assert f'name="thread" value="{messages[0].thread_id}"' in html
    assert 'value="archive"' in html


def test_a_cards_full_date_is_the_date_format_it_replaces():
    for days in (0, 3, 400):
        local = timezone.localtime() - timedelta(days=days, minutes=7)
        assert _date_full(local) == date_format(local, "D j M Y, H:i")


def _images_bar(client, message) -> bool:
    page = client.get(reverse("thread_detail", args=[message.thread_id])).content.decode()
    return "Show remote images" in page


@pytest.mark.parametrize(
    ("html", "blocked"),
    [
        ('<p>Hi<img src="https://tracker.example.net/p.gif"></p>', True),
        ('<p style="background: url(https://img.example.net/bg.png)">Hi</p>', True),
        ('<table background="https://img.example.net/bg.png"><tr><td>Hi</td></tr></table>', True),
        ('<p>Only <a href="https://example.com/">a link</a> and <img src="data:image/png;base64,iVBOR"></p>', False),
        ("", False),  # plain text
    ],
)
def test_show_images_bar_only_where_the_sanitiser_blocked_something(client, mailbox, html, blocked):
    message = _thread(mailbox, 1, html=html)[0]
    client.force_login(mailbox.user)
    # Not known before the body was first rendered: the body document has its own bar meanwhile.
    assert not _images_bar(client, message)

    body = client.get(reverse("message_body", args=[message.id])).content.decode()

    assert ("Show images" in body) is blocked
    assert Message.objects.get(pk=message.id).remote_content is blocked
    assert _images_bar(client, message) is blocked


def test_the_blocked_flag_is_written_once_and_not_by_a_render_with_images(client, mailbox):
    message = _thread(mailbox, 1, html='<img src="https://img.example.net/a.png">')[0]
    client.force_login(mailbox.user)
    url = reverse("message_body", args=[message.id])

    assert client.get(url, {"images": "1"}).status_code == 200  # shown through the proxy: nothing learnt
    assert Message.objects.get(pk=message.id).remote_content is None
    client.get(url)
    with CaptureQueriesContext(connection) as again:
        client.get(url)
    assert Message.objects.get(pk=message.id).remote_content is True
    assert not [q for q in again.captured_queries if q["sql"].startswith("UPDATE")]
    # Asked for this message: its images show, so the bar does not.
    page = client.get(reverse("thread_detail", args=[message.thread_id]), {"images": message.id}).content.decode()
    assert "Show remote images" not in page


def _threads_in_order(mailbox, names: list[str]) -> list[int]:
    """One conversation per name, each a minute newer than the one before: their thread ids."""
    return [
        message_import_raw(
            mailbox=mailbox,
            raw=raw_message(f"{name}@example.org", f"Subject {name}", date=f"Mon, 02 Nov 2026 10:{n:02d}:00 +0000"),
            source_tag="test",
        ).message.thread_id
        for n, name in enumerate(names)
    ]


def test_a_conversation_links_its_neighbours_in_the_list_it_came_from(client, mailbox, other_mailbox):
    oldest, middle, newest = _threads_in_order(mailbox, ["a", "b", "c"])
    _threads_in_order(other_mailbox, ["x", "y", "z"])  # another mailbox's threads sit in between by time
    work = user_label_create(mailbox=mailbox, name="Work")
    messages_label_add(
        mailbox=mailbox,
        message_ids=list(Message.objects.filter(thread_id=oldest).values_list("id", flat=True)),
        label=work,
    )
    client.force_login(mailbox.user)

    inbox_page = client.get(reverse("thread_detail", args=[middle])).context["neighbours"]
    assert inbox_page == {
        "newer": reverse("thread_detail", args=[newest]),
        "older": reverse("thread_detail", args=[oldest]),
    }
    assert client.get(reverse("thread_detail", args=[newest])).context["neighbours"] == {
        "older": reverse("thread_detail", args=[middle])
    }
    # Opened from the Work label (only the oldest is there): no neighbours; from All mail, they
    # keep the list in their ?back= so that j/k go on stepping through it.
    label_back = f"?back=/label/{work.id}/"
    assert client.get(reverse("thread_detail", args=[oldest]) + label_back).context["neighbours"] == {}
    html = client.get(reverse("thread_detail", args=[oldest]) + "?back=/all/").content.decode()
    assert f'<a href="{reverse("thread_detail", args=[middle])}?back=/all/" rel="prev" data-key="k">' in html
    assert 'data-key="j"' not in html
    # Search results have no stored order to step through.
    assert (
        client.get(reverse("thread_detail", args=[middle]) + "?back=/search/%3Fq%3Dsubject").context["neighbours"] == {}
    )


def test_neighbours_cost_one_query(client, mailbox):
    _, middle, _ = _threads_in_order(mailbox, ["a", "b", "c"])
    client.force_login(mailbox.user)
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse("thread_detail", args=[middle]) + "?back=/all/")
    assert sum("WITH here AS" in q["sql"] for q in captured.captured_queries) == 1


def test_a_user_label_s_neighbours_skip_what_its_list_hides(client, mailbox):
    oldest, middle, newest = _threads_in_order(mailbox, ["a", "b", "c"])
    work = user_label_create(mailbox=mailbox, name="Work")
    ids = list(Message.objects.filter(mailbox=mailbox).values_list("id", flat=True))
    messages_label_add(mailbox=mailbox, message_ids=ids, label=work)
    threads_action_apply(mailbox=mailbox, action="trash", thread_ids=[middle])  # keeps Work, hidden from it
    client.force_login(mailbox.user)

    neighbours = client.get(reverse("thread_detail", args=[newest]) + f"?back=/label/{work.id}/").context["neighbours"]

    assert neighbours == {"older": reverse("thread_detail", args=[oldest]) + f"?back=/label/{work.id}/"}
