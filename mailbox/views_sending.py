"""After Send: undo it within the delay, scheduled sends and their cancelling, and the delivery
timeline of a sent message. Thin: the work is in ``mailbox.services``."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_POST

from mailbox import selectors
from mailbox.models import Mailbox, Message
from mailbox.services import drafts as draft_services
from mailbox.services.preferences import mailbox_zone
from mailbox.services.sending import messages_scheduled

# Scheduling is deliberate and rare: one page holds what a person schedules.
SCHEDULED_PAGE_SIZE = 200
TOO_LATE = "Too late to undo: the message has already been sent."
UNDONE = "Sending undone. Your message is back as a draft."
SCHEDULE_CANCELLED = "Scheduled send cancelled. Your message is back as a draft."


def _mailbox_or_404(request: HttpRequest) -> Mailbox:
    mailbox = selectors.mailbox_get_for_user(user=request.user)
    if mailbox is None:
        raise Http404("No mailbox for this account")
    return mailbox


def sent_flash(request: HttpRequest, *, text: str, message: Message) -> SafeString:
    """``text`` with an Undo button (a POST form) for the message just sent, as a flash message.
    The flash survives the redirect as safe HTML (Django's message storage keeps it marked)."""
    return format_html(
        '{} <form method="post" action="{}" class="inline undo-send">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
        '<button type="submit">Undo</button></form>',
        text,
        reverse("message_send_undo", args=[message.id]),
        get_token(request),
    )


@require_POST
def message_send_undo(request: HttpRequest, message_id: int) -> HttpResponse:
    """Cancel a send still within its undo delay, or a scheduled one (the Scheduled page posts
    ``scheduled``), and open its text again as a draft."""
    mailbox = _mailbox_or_404(request)
    if not Message.objects.filter(mailbox=mailbox, pk=message_id).exists():
        raise Http404("No such message")
    draft = draft_services.draft_from_unsent(mailbox=mailbox, message_id=message_id)
    if draft is None:
        messages.error(request, TOO_LATE)
        return redirect("inbox")
    messages.success(request, SCHEDULE_CANCELLED if request.POST.get("scheduled") else UNDONE)
    return redirect("draft", draft_id=draft.id)


@require_GET
def scheduled(request: HttpRequest) -> HttpResponse:
    """Messages waiting for their Send later time, soonest first, each with a Cancel button."""
    mailbox = _mailbox_or_404(request)
    waiting = list(messages_scheduled(mailbox=mailbox)[:SCHEDULED_PAGE_SIZE])
    context = {"waiting": waiting, "page_size": SCHEDULED_PAGE_SIZE, "zone": mailbox_zone(mailbox=mailbox)}
    return render(request, "mailbox/scheduled.html", context, using="jinja2")
