"""The conversation view and what it embeds: the sandboxed body document, attachments, inline
images and the image proxy. Thin: selectors read, ``mailbox.rendering`` makes bodies safe."""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlencode

from django.contrib import messages as flash  # ``messages`` names a conversation's messages here
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import get_language
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from delivery.selectors import (
    RecipientTimeline,
    blob_open,
    delivery_timeline_for_message,
    delivery_timelines_for_messages,
)
from mailbox import selectors, selectors_conversation
from mailbox.live import TAB_HEADER, tab_id_clean
from mailbox.models import Attachment, Mailbox, Message, Participant
from mailbox.navigation import back_query, local_path
from mailbox.parsing.calendar import CalendarEvent
from mailbox.rendering.body import render_body
from mailbox.rendering.height import body_lines_estimate
from mailbox.rendering.urls import (
    body_signature,
    body_signature_valid,
    inline_image_signature_valid,
    message_url_policy,
)
from mailbox.rows import short_date
from mailbox.services.conversations import message_split_off
from mailbox.services.flags import messages_mark_read
from mailbox.services.images import (
    ImageFetchError,
    image_fetch,
    message_body_lines_record,
    message_remote_content_record,
    proxy_token_url,
    remote_images_always_for_sender,
)
from mailbox.thread_actions import ThreadActions, thread_actions_for
from mailbox.views import UNDO_NOTICE_KEY, UNDO_SESSION_KEY

# The heights, in lines, a body's iframe takes (static/mailbox/conversation.css sizes each); a body
# taller than the last gets the default height, and every iframe can be resized by hand.
BODY_LINE_STEPS = (2, 3, 4, 5, 6, 8, 10, 12, 15, 18, 22, 26, 30)
# Attachment types we label as such; anything else is sent as opaque bytes.
SAFE_DOWNLOAD_TYPES = selectors_conversation.INLINE_IMAGE_TYPES | {
    "application/pdf",
    "application/zip",
    "text/plain",
    "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
PREVIEW_TYPES = selectors_conversation.INLINE_IMAGE_TYPES
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# Responses carrying untrusted bytes run no script and load nothing, even if opened directly.
UNTRUSTED_CSP = "default-src 'none'; sandbox"
# What an invitation asks, as the card's heading says it (iTIP methods, RFC 5546 1.4).
INVITE_HEADINGS = {
    "REQUEST": "Invitation",
    "CANCEL": "Cancelled event",
    "REPLY": "Reply to an invitation",
    "COUNTER": "New time proposed",
    "PUBLISH": "Event",
}
# Why a message is in its conversation, as the sender details say it (Message.thread_reason).
THREAD_REASONS = {
    Message.ThreadReason.REFERENCE: "Its In-Reply-To/References headers name a message of this conversation.",
    Message.ThreadReason.SUBJECT: "Same subject and correspondents, within days (it carried no usable "
    "threading headers).",
    Message.ThreadReason.MANUAL: "You put it here: split, merged or moved by hand. New replies to it follow it.",
    Message.ThreadReason.NEW: "It started this conversation.",
}


@dataclass(frozen=True)
class MessageCard:
    """One message as the conversation view shows it, everything the template needs computed
    once: a 100-message thread must render well under 100 ms."""

    message: Message
    expanded: bool
    was_unread: bool
    show_images: bool
    body_url: str
    images_always_url: str
    sender: str
    to: str
    cc: str
    date_short: str
    date_full: str
    attachments: list[tuple[Attachment, str, bool]]  # (part, download URL, previewable)
    authentication: list[tuple[str, str]]
    # Per recipient, for messages this mailbox sent (empty otherwise); see delivery_timeline.
    deliveries: list[RecipientTimeline]
    deliveries_url: str
    thread_reason: str
    split_url: str  # empty for a conversation's only message: nothing to split it from
    invites: list["InviteCard"]  # its calendar parts' events, shown above the body
    encrypted: bool  # S/MIME encrypted: the body cannot be shown
    body_lines: int | None  # the iframe's height in lines (a step of BODY_LINE_STEPS); None: the default


@dataclass(frozen=True)
class InviteCard:
    """A calendar event as the card shows it: plain strings, escaped by the template."""

    heading: str
    title: str
    when: str  # "Fri 28 Mar 2014, 11:03 to 11:33 (FLE Standard Time, UTC+02:00)"
    location: str
    organizer: str
    cancelled: bool

    @classmethod
    def of(cls, event: CalendarEvent) -> "InviteCard":
        heading = "Cancelled event" if event.cancelled else INVITE_HEADINGS.get(event.method, "Event")
        return cls(
            heading=heading,
            title=event.title or "(no title)",
            when=_event_when(event),
            location=event.location,
            organizer=_address_text(event.organizer_name, event.organizer_address) if event.organizer_address else "",
            cancelled=event.cancelled,
        )


def _event_when(event: CalendarEvent) -> str:
    """Start and end in the event's own time zone (the organizer's wall clock), with its name
    and offset; all-day events as dates."""
    start, end = event.start, event.end
    if start is None:
        return ""
    if not isinstance(start, datetime):
        last_day = end - timedelta(days=1) if isinstance(end, date) and not isinstance(end, datetime) else None
        return _day_text(start, get_language()) + (
            f" to {_day_text(last_day, get_language())}" if last_day and last_day > start else ""
        )
    text = f"{_day_text(start.date(), get_language())}, {start:%H:%M}"
    if isinstance(end, datetime):
        same_day = end.date() == start.date()
        text += f" to {end:%H:%M}" if same_day else f" to {_day_text(end.date(), get_language())}, {end:%H:%M}"
    offset = start.strftime("%z") if start.tzinfo else ""
    zone = ", ".join(filter(None, [event.timezone, f"UTC{offset[:3]}:{offset[3:]}" if offset else ""]))
    return f"{text} ({zone})" if zone else text


class _Urls:
    """Per-message URLs by substitution into one reversed URL each: ``reverse`` per message and
    route would cost more than the rest of the page."""

    MESSAGE, PART = 999999999999, 888888888888

    def __init__(self) -> None:
        self.body = reverse("message_body", args=[self.MESSAGE])
        self.images_always = reverse("remote_images_always", args=[self.MESSAGE])
        self.attachment = reverse("attachment", args=[self.MESSAGE, self.PART])
        self.deliveries = reverse("delivery_timeline", args=[self.MESSAGE])
        self.split = reverse("message_split", args=[self.MESSAGE])

    def of(self, pattern: str, message_id: int, part_id: int = 0) -> str:
        return pattern.replace(str(self.MESSAGE), str(message_id)).replace(str(self.PART), str(part_id))


def _card(
    urls: _Urls,
    message: Message,
    *,
    expanded: bool,
    unread: bool,
    show_images: bool,
    asked: bool,
    deliveries: list[RecipientTimeline],
    splittable: bool,
    recipients: dict[int, list[tuple[str, str, str]]],
    attachments: list[Attachment],
    notices: selectors_conversation.MessageNotices,
) -> MessageCard:
    people = recipients.get(message.id, [])
    results = message.authentication_results or {}
    return MessageCard(
        message=message,
        expanded=expanded,
        was_unread=unread,
        show_images=show_images,
        body_url=urls.of(urls.body, message.id) + ("?images=1" if asked else ""),
        images_always_url=urls.of(urls.images_always, message.id),
        sender=_address_text(message.from_name, message.from_address),
        to=", ".join(_address_text(name, address) for role, name, address in people if role == Participant.Role.TO),
        cc=", ".join(_address_text(name, address) for role, name, address in people if role == Participant.Role.CC),
        date_short=short_date(message.date),
        date_full=_date_full(timezone.localtime(message.date)),
        attachments=[
            (part, urls.of(urls.attachment, message.id, part.id), part.content_type in PREVIEW_TYPES)
            for part in attachments
            if not part.is_inline
        ],
        # SPF, DKIM and DMARC as the receiving server recorded them ("none" when it did not).
        authentication=[(check.upper(), str(results.get(check) or "none")) for check in ("spf", "dkim", "dmarc")],
        deliveries=deliveries,
        deliveries_url=urls.of(urls.deliveries, message.id),
        thread_reason=THREAD_REASONS.get(message.thread_reason, message.get_thread_reason_display()),
        split_url=urls.of(urls.split, message.id) if splittable else "",
        invites=[InviteCard.of(event) for event in notices.events],
        encrypted=notices.encrypted,
        body_lines=_body_lines_step(message.body_lines),
    )


def _body_lines_step(lines: int | None) -> int | None:
    """The smallest height step (conversation.css has one rule per step) that holds ``lines``;
    ``None`` when unknown or taller than the last: the iframe's default height."""
    if lines is None:
        return None
    return next((step for step in BODY_LINE_STEPS if step >= lines), None)


def _date_full(local: datetime) -> str:
    """The date format "D j M Y, H:i", its translated day part made once per day (the formatter
    was a fifth of a long conversation's CPU)."""
    return f"{_day_text(local.date(), get_language())}, {local.hour:02d}:{local.minute:02d}"


@lru_cache(maxsize=1024)
def _day_text(day: date, language: str | None) -> str:
    return date_format(day, "D j M Y")


def _address_text(name: str, address: str) -> str:
    return f"{name} <{address}>" if name else address


def _mailbox_or_404(request: HttpRequest) -> Mailbox:
    mailbox = selectors.mailbox_get_for_user(user=request.user)
    if mailbox is None:
        raise Http404("No mailbox")
    return mailbox


def _message_or_404(mailbox: Mailbox, message_id: int) -> Message:
    message = selectors_conversation.message_get_for_mailbox(mailbox=mailbox, message_id=message_id)
    if message is None:
        raise Http404("No such message")
    return message


@require_GET
def thread_detail(request: HttpRequest, thread_id: int) -> HttpResponse:
    """All messages of a thread, unread ones open. Reading changes nothing: the page posts its
    unread messages to ``thread_mark_read`` once it is shown (link prefetchers and previews GET
    pages too)."""
    mailbox = _mailbox_or_404(request)
    # Read before the conversation: the page's catch-up replays any change landing in between.
    live_cursor = selectors.live_cursor()
    conversation = selectors_conversation.conversation_get(mailbox=mailbox, thread_id=thread_id)
    if conversation is None or not conversation.messages:
        return _merged_away_or_404(request, mailbox, thread_id)
    messages = conversation.messages
    unread = [m.id for m in messages if not m.is_read]
    opened = {_int_or_none(request.GET.get("open")), messages[-1].id, *unread}
    shown = _int_or_none(request.GET.get("images"))
    always = mailbox.remote_images == Mailbox.RemoteImages.ALWAYS
    urls = _Urls()
    # One batch for the whole conversation: the query count does not grow with its length.
    timelines = delivery_timelines_for_messages(mailbox=mailbox, message_ids=[m.id for m in messages])
    notices = selectors_conversation.message_notices(mailbox=mailbox, attachments=conversation.attachments)
    no_notices = selectors_conversation.MessageNotices()
    cards = [
        _card(
            urls,
            m,
            expanded=m.id in opened,
            unread=m.id in unread,
            show_images=m.id == shown or always or m.from_address.lower() in conversation.image_senders,
            asked=m.id == shown,
            deliveries=timelines.get(m.id, []),
            splittable=len(messages) > 1,
            recipients=conversation.recipients,
            attachments=conversation.attachments.get(m.id, []),
            notices=notices.get(m.id, no_notices),
        )
        for m in messages
    ]
    back = local_path(request.GET.get("back", ""))
    actions = thread_actions_for(
        thread=conversation.thread,
        label_ids=conversation.label_ids,
        labels=selectors.label_list(mailbox=mailbox),
        back=back,
        inbox_url=reverse("inbox"),
        url=reverse("thread_detail", args=[thread_id]),
    )
    context = {
        "mailbox": mailbox,
        "thread": conversation.thread,
        "cards": cards,
        "actions": actions,
        "neighbours": _neighbour_urls(mailbox, actions, thread_id, back=back),
        "compose_url": reverse("compose"),  # once, not three times a message
        "unread_ids": ",".join(map(str, unread)),
        "live_cursor": live_cursor,
        "undo_notice": _undo_notice(request),
        "can_undo": UNDO_SESSION_KEY in request.session,
    }
    return render(request, "mailbox/thread_detail.html", context, using="jinja2")


def _neighbour_urls(mailbox: Mailbox, actions: ThreadActions, thread_id: int, *, back: str | None) -> dict[str, str]:
    """The conversations above and below this one in the list it came from ("newer", "older"),
    opened with the same ``?back=`` so that j/k keep stepping through that list."""
    if actions.view is None:
        return {}
    found = selectors.thread_neighbours(mailbox=mailbox, view=actions.view, thread_id=thread_id)
    suffix = back_query(back) if back else ""
    return {
        name: reverse("thread_detail", args=[neighbour]) + suffix
        for name, neighbour in (("newer", found.newer), ("older", found.older))
        if neighbour is not None
    }


# Sent by the page's own live refresh (conversation.js), which shows no undo bar.
REFRESH_HEADER = "X-Mailsite-Refresh"


def _undo_notice(request: HttpRequest) -> str | None:
    """The notice of the action just done, taken by the page it leads to; a live refresh of the
    page that was left (its fetch can overtake the action's redirect) only reads it."""
    if request.headers.get(REFRESH_HEADER):
        return request.session.get(UNDO_NOTICE_KEY)
    return request.session.pop(UNDO_NOTICE_KEY, None)


def _merged_away_or_404(request: HttpRequest, mailbox: Mailbox, thread_id: int) -> HttpResponse:
    """A bookmark or open tab of a conversation merged into another lands on that one."""
    merged_into = selectors_conversation.thread_merged_into(mailbox=mailbox, thread_id=thread_id)
    if merged_into is None:
        raise Http404("No such conversation")
    query = request.GET.urlencode()
    return redirect(reverse("thread_detail", args=[merged_into]) + (f"?{query}" if query else ""))


@require_POST
def thread_mark_read(request: HttpRequest, thread_id: int) -> HttpResponse:
    """Mark read the messages of a thread that its page showed (``message`` ids), not any that
    arrived since. conversation.js posts this once the page is visible; without JavaScript the
    page's "Mark as read" button does, from the tab named in ``X-Mailsite-Tab`` if any (that tab then
    knows the change as its own when it comes back). Idempotent: read messages are left as they are."""
    mailbox = _mailbox_or_404(request)
    asked = [i for i in map(_int_or_none, request.POST.getlist("message")) if i is not None]
    ids = selectors_conversation.thread_message_ids(mailbox=mailbox, thread_id=thread_id, message_ids=asked)
    if ids is None:
        raise Http404("No such conversation")
    if not asked:
        return HttpResponseBadRequest("Name the messages to mark read.", content_type="text/plain")
    if ids:
        messages_mark_read(mailbox=mailbox, message_ids=ids, tab=tab_id_clean(request.headers.get(TAB_HEADER)))
    if "application/json" in request.headers.get("Accept", ""):
        return HttpResponse(status=204)
    return redirect(reverse("thread_detail", args=[thread_id]))


@require_POST
def message_split(request: HttpRequest, message_id: int) -> HttpResponse:
    """Split a message out into a new conversation and open that one."""
    mailbox = _mailbox_or_404(request)
    message = _message_or_404(mailbox, message_id)
    try:
        thread = message_split_off(mailbox=mailbox, message_id=message.id)
    except ValidationError as exc:
        flash.error(request, " ".join(exc.messages))
        return redirect(reverse("thread_detail", args=[message.thread_id]) + f"#m-{message.id}")
    flash.info(request, "Split into a new conversation.")
    return redirect("thread_detail", thread_id=thread.pk)


@require_GET
def delivery_timeline(request: HttpRequest, message_id: int) -> HttpResponse:
    """The delivery lines of one sent message as an HTML fragment, which conversation.js fetches
    again when a ``delivery.updated`` event names a message on the page."""
    mailbox = _mailbox_or_404(request)
    _message_or_404(mailbox, message_id)
    timeline = delivery_timeline_for_message(mailbox=mailbox, message_id=message_id)
    return render(request, "mailbox/partials/delivery_timeline.html", {"deliveries": timeline}, using="jinja2")


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


@login_not_required
@require_GET
@xframe_options_sameorigin
def message_body(request: HttpRequest, message_id: int) -> HttpResponse:
    """The sanitised body as its own document, for ``<iframe sandbox>`` on our pages only: for the
    owner's session, or with the signature of the document's own "show images" link."""
    mailbox = _mailbox_for_body(request, message_id)
    if mailbox is None:
        return redirect_to_login(request.get_full_path())
    message = _message_or_404(mailbox, message_id)
    body = selectors_conversation.message_body_get(mailbox=mailbox, message=message)
    parts = selectors_conversation.message_inline_parts(mailbox=mailbox, message=message)
    senders = selectors_conversation.image_senders_allowed(mailbox=mailbox, addresses={message.from_address.lower()})
    show = request.GET.get("images") == "1" or mailbox.remote_images == Mailbox.RemoteImages.ALWAYS or bool(senders)
    policy = message_url_policy(mailbox_id=mailbox.id, message_id=message.id, content_ids=set(parts), show_remote=show)
    rendered = render_body(text=body.text if body else "", html=body.html if body else "", policy=policy)
    if message.body_lines is None:  # delivered before delivery measured bodies
        lines = body_lines_estimate(text=body.text if body else "", html=body.html if body else "")
        message_body_lines_record(message=message, lines=lines)
    if not show:
        message_remote_content_record(message=message, blocked=rendered.remote_content_blocked)
    show_images_query = urlencode({"images": "1", "s": body_signature(mailbox_id=mailbox.id, message_id=message.id)})
    context = {"message": message, "body": rendered, "show_images_query": show_images_query}
    response = render(request, "mailbox/message_body.html", context)
    origin = request.build_absolute_uri("/").rstrip("/")
    images = f"data: {origin}{policy.own_prefixes[0]}" + (f" {origin}{reverse('image_proxy')}" if show else "")
    response["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src {images}; "
        "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    )
    response["Referrer-Policy"] = "no-referrer"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def _mailbox_for_body(request: HttpRequest, message_id: int) -> Mailbox | None:
    if request.user.is_authenticated:
        return _mailbox_or_404(request)
    mailbox_id = selectors_conversation.message_mailbox_id(message_id=message_id)
    signature = request.GET.get("s", "")
    if mailbox_id is None or not body_signature_valid(
        mailbox_id=mailbox_id, message_id=message_id, signature=signature
    ):
        return None
    return selectors_conversation.mailbox_get(mailbox_id=mailbox_id)


@require_GET
def attachment(request: HttpRequest, message_id: int, attachment_id: int) -> FileResponse:
    """An attachment as a download, streamed from object storage, never rendered by the browser."""
    mailbox = _mailbox_or_404(request)
    part = selectors_conversation.attachment_get_for_mailbox(
        mailbox_id=mailbox.id, message_id=message_id, attachment_id=attachment_id
    )
    if part is None:
        raise Http404("No such attachment")
    content_type = part.content_type.lower() if part.content_type.lower() in SAFE_DOWNLOAD_TYPES else ""
    # Control characters would break the header; the name is only a suggestion to the browser.
    filename = _CONTROL_CHARACTERS.sub("", part.filename) or f"attachment-{part.id}"
    return _untrusted(
        FileResponse(
            blob_open(blob=part.blob),
            as_attachment=True,
            filename=filename,
            content_type=content_type or "application/octet-stream",
        )
    )


@login_not_required
@require_GET
def inline_image(request: HttpRequest, message_id: int, content_id: str) -> HttpResponse:
    """An inline ``cid:`` image of a message: for its owner's session, or with the signature the
    body document's URL carries (its requests come without our cookies; see rendering.urls)."""
    mailbox_id = _mailbox_id_for_inline(request, message_id, content_id)
    if mailbox_id is None:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Http404("No such image")
    part = selectors_conversation.inline_part_get(mailbox_id=mailbox_id, message_id=message_id, content_id=content_id)
    if part is None:
        raise Http404("No such image")
    response = FileResponse(blob_open(blob=part.blob), content_type=part.content_type.lower())
    response["Cache-Control"] = "private, max-age=86400"
    return _untrusted(response)


def _mailbox_id_for_inline(request: HttpRequest, message_id: int, content_id: str) -> int | None:
    if request.user.is_authenticated:
        mailbox = selectors.mailbox_get_for_user(user=request.user)
        return mailbox.id if mailbox else None
    signature = request.GET.get("s", "")
    mailbox_id = selectors_conversation.message_mailbox_id(message_id=message_id)
    valid = mailbox_id is not None and inline_image_signature_valid(
        mailbox_id=mailbox_id, message_id=message_id, content_id=content_id, signature=signature
    )
    return mailbox_id if valid else None


@login_not_required
@require_GET
def image_proxy(request: HttpRequest) -> HttpResponse:
    """A remote image fetched for the reader. Only URLs our own renderer signed are fetched."""
    try:
        url = proxy_token_url(request.GET.get("u", ""))
    except signing.BadSignature:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return HttpResponseBadRequest("This image link is not valid or has expired.", content_type="text/plain")
    try:
        image = image_fetch(url=url)
    except ImageFetchError as exc:
        return HttpResponse(f"Image not available: {exc}", status=502, content_type="text/plain")
    response = HttpResponse(image.data, content_type=image.content_type)
    response["Cache-Control"] = "private, max-age=86400"
    return _untrusted(response)


@require_POST
def remote_images_always(request: HttpRequest, message_id: int) -> HttpResponse:
    """Always show remote images from this message's sender, then back to the conversation."""
    mailbox = _mailbox_or_404(request)
    message = _message_or_404(mailbox, message_id)
    if message.from_address:
        remote_images_always_for_sender(mailbox=mailbox, address=message.from_address)
    return redirect(reverse("thread_detail", args=[message.thread_id]) + f"#m-{message.id}")


def _untrusted(response: HttpResponse) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = UNTRUSTED_CSP
    response["Referrer-Policy"] = "no-referrer"
    return response
