"""Compose, reply, forward and drafts. Thin: a form, a selector or service call, a template or
JSON. The form works without JavaScript (a plain POST saves the draft); ``compose.js`` adds
autosave, upload progress and address suggestions through the JSON endpoints below."""

from dataclasses import asdict
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailbox import selectors, selectors_drafts
from mailbox.forms_compose import DraftForm
from mailbox.models import Draft, Mailbox, Message
from mailbox.services import drafts as draft_services
from mailbox.services import preferences
from mailbox.services.sending import SendRefused
from mailbox.views_sending import sent_flash

SOURCE_MODES = {Draft.Mode.REPLY, Draft.Mode.REPLY_ALL, Draft.Mode.FORWARD}
MESSAGE_SENT = "Message sent."
SEND_AT_PAST = "Not sent: the Send later time has passed; choose a time in the future or clear it to send now."
# Multipart framing around one uploaded file; a request longer than the limit plus this is refused
# before its body is read.
UPLOAD_OVERHEAD = 64 * 1024


def _mailbox_or_404(request: HttpRequest) -> Mailbox:
    mailbox = selectors.mailbox_get_for_user(user=request.user)
    if mailbox is None:
        raise Http404("No mailbox for this account")
    return mailbox


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _source_from(mailbox: Mailbox, params: QueryDict) -> tuple[str, Message | None]:
    """The mode and the message replied to or forwarded, from ``reply_to``/``mode`` parameters.
    A message that is not this mailbox's, or a malformed id, is a 404."""
    if not params.get("reply_to"):
        return Draft.Mode.NEW, None
    message_id = _int_or_none(params.get("reply_to"))
    source = selectors_drafts.source_message_get(mailbox=mailbox, message_id=message_id) if message_id else None
    if source is None:
        raise Http404("No such message")
    mode = params.get("mode", Draft.Mode.REPLY)
    return (mode if mode in SOURCE_MODES else Draft.Mode.REPLY), source


@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest) -> HttpResponse:
    """A new message, or a reply/reply all/forward of ``?reply_to=<message id>&mode=…``. Nothing
    is stored until the first save (autosave or the Save button)."""
    mailbox = _mailbox_or_404(request)
    params = request.POST if request.method == "POST" else request.GET
    mode, source = _source_from(mailbox, params)
    if request.method == "GET":
        start = draft_services.draft_initial_fields(mailbox=mailbox, mode=mode, source=source)
        form = DraftForm(initial=asdict(start), mailbox=mailbox)
        return _render_compose(request, form=form, mode=mode, source=source)
    form = DraftForm(request.POST, mailbox=mailbox)
    if not form.is_valid():
        return _render_compose(request, form=form, mode=mode, source=source)
    draft = draft_services.draft_create(mailbox=mailbox, mode=mode, source=source, fields=form.draft_fields())
    return _after_save(request, draft, _send_at(form))


def _send_at(form: DraftForm) -> datetime | None:
    """The Send later time, aware in the zone it was typed in. While the mailbox has no time zone,
    the browser's zone that read it becomes the mailbox's (Settings changes it), so the Scheduled
    view shows the time as it was picked."""
    send_at = form.cleaned_data["send_at"]
    if send_at is not None and form.mailbox is not None and not form.mailbox.timezone:
        preferences.mailbox_timezone_default(mailbox=form.mailbox, name=form.send_zone().key)
    return send_at


def _render_compose(
    request: HttpRequest,
    *,
    form: DraftForm,
    mode: str,
    source: Message | None,
    draft: Draft | None = None,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    if problems is None and form.is_bound and form.is_valid():
        data = form.cleaned_data
        problems = draft_services.recipients_check(to=data["to"], cc=data["cc"], bcc=data["bcc"], require_one=False)
    context = {
        "form": form,
        "draft": draft,
        "mode": mode,
        "source": source,
        "problems": problems or {},
        "attachments": list(draft.attachments.all()) if draft else [],
        "max_attachment_bytes": settings.MAILSITE_COMPOSE_MAX_ATTACHMENT_BYTES,
        "max_attachment_text": draft_services.size_text(settings.MAILSITE_COMPOSE_MAX_ATTACHMENT_BYTES),
    }
    return render(request, "mailbox/compose.html", context, status=status, using="jinja2")


@require_http_methods(["GET", "POST"])
def draft(request: HttpRequest, draft_id: int) -> HttpResponse:
    """Resume a draft (GET), or save it from the form (POST: save, send, discard, attach files,
    remove an attachment)."""
    mailbox = _mailbox_or_404(request)
    current = selectors_drafts.draft_get(mailbox=mailbox, draft_id=draft_id)
    if current is None:
        raise Http404("No such draft")
    if request.method == "GET":
        form = DraftForm.for_draft(current, mailbox=mailbox)
        data = form.initial
        problems = draft_services.recipients_check(to=data["to"], cc=data["cc"], bcc=data["bcc"], require_one=False)
        return _render_compose(request, form=form, mode=current.mode, source=None, draft=current, problems=problems)
    if request.POST.get("action") == "discard":
        draft_services.draft_discard(draft=current)
        messages.success(request, "Draft discarded.")
        return redirect("drafts")
    form = DraftForm(request.POST, mailbox=mailbox)
    if not form.is_valid():
        return _render_compose(request, form=form, mode=current.mode, source=None, draft=current)
    try:
        saved = draft_services.draft_autosave(
            mailbox=mailbox, draft_id=current.id, version=form.cleaned_data["version"] or 0, fields=form.draft_fields()
        )
    except draft_services.DraftConflict as conflict:
        return _render_conflict(request, form=form, draft=current, conflict=conflict)
    return _after_save(request, saved, _send_at(form))


def _render_conflict(
    request: HttpRequest, *, form: DraftForm, draft: Draft, conflict: draft_services.DraftConflict
) -> HttpResponse:
    """The form again with the text the user posted, now at the current version so that saving
    once more replaces the other tab's version deliberately."""
    data = request.POST.copy()
    data["version"] = str(conflict.current_version)
    form = DraftForm(data, mailbox=draft.mailbox)
    form.is_valid()
    form.add_error(None, str(conflict))
    return _render_compose(request, form=form, mode=draft.mode, source=None, draft=draft, status=409)


def _after_save(request: HttpRequest, draft: Draft, send_at: datetime | None = None) -> HttpResponse:
    """The rest of a form POST once the text is saved: files, removals, Send; then back to the
    draft (post/redirect/get) with what happened as messages."""
    for upload in request.FILES.getlist("files"):
        try:
            draft_services.draft_attach(draft=draft, upload=upload)
        except draft_services.AttachmentRejected as rejected:
            messages.error(request, rejected.message)
    remove_id = _int_or_none(request.POST.get("remove_attachment"))
    if remove_id is not None:
        draft_services.draft_attachment_remove(draft=draft, attachment_id=remove_id)
    if request.POST.get("action") == "send":
        problems = draft_services.recipients_check(to=draft.to, cc=draft.cc, bcc=draft.bcc)
        if problems:
            messages.error(request, "Not sent. " + " ".join(problems.values()) + " Your draft is saved.")
            return redirect("draft", draft_id=draft.id)
        if send_at is not None and send_at <= timezone.now():
            messages.error(request, f"{SEND_AT_PAST} Your draft is saved.")
            return redirect("draft", draft_id=draft.id)
        try:
            sent = draft_services.draft_send(draft=draft, send_at=send_at)
        except SendRefused as refused:
            messages.error(request, f"Not sent. {refused} Your draft is saved.")
            return redirect("draft", draft_id=draft.id)
        if send_at is not None:
            zone = getattr(send_at.tzinfo, "key", "UTC")
            messages.success(request, f"Message scheduled for {send_at:%d %b %Y, %H:%M} {zone}.")
            return redirect("scheduled")
        messages.success(request, sent_flash(request, text=MESSAGE_SENT, message=sent))
        return redirect("inbox")
    else:
        messages.success(request, "Draft saved.")
    return redirect("draft", draft_id=draft.id)


@require_GET
def drafts(request: HttpRequest) -> HttpResponse:
    """The mailbox's drafts, most recently edited first, 50 a page."""
    mailbox = _mailbox_or_404(request)
    older_than = selectors_drafts.DraftCursor.decode(request.GET.get("older", ""))
    page = selectors_drafts.draft_list(mailbox=mailbox, older_than=older_than)
    # The mailbox makes the page chrome a mailbox page's: search box, and app.js for the shortcuts.
    context = {"mailbox": mailbox, "page": page, "is_first_page": older_than is None}
    return render(request, "mailbox/drafts.html", context, using="jinja2")


@require_POST
def draft_autosave(request: HttpRequest) -> JsonResponse:
    """Save the compose form in the background (compose.js). Without ``draft`` the first save
    creates it (from ``mode``/``reply_to``). Answers the new version, or 409 on a conflict."""
    mailbox = _mailbox_or_404(request)
    form = DraftForm(request.POST, mailbox=mailbox)
    if not form.is_valid():
        return JsonResponse({"error": "The form could not be saved.", "fields": form.errors}, status=400)
    draft_id = _int_or_none(request.POST.get("draft"))
    if draft_id is None:
        mode, source = _source_from(mailbox, request.POST)
        saved = draft_services.draft_create(mailbox=mailbox, mode=mode, source=source, fields=form.draft_fields())
    else:
        version = form.cleaned_data["version"] or 0
        try:
            saved = draft_services.draft_autosave(
                mailbox=mailbox, draft_id=draft_id, version=version, fields=form.draft_fields()
            )
        except Draft.DoesNotExist:
            raise Http404("No such draft") from None
        except draft_services.DraftConflict as conflict:
            return JsonResponse({"error": str(conflict), "version": conflict.current_version}, status=409)
    data = form.cleaned_data
    return JsonResponse(
        {
            "draft": saved.id,
            "version": saved.version,
            "url": reverse("draft", args=[saved.id]),
            "upload_url": reverse("draft_attachment_upload", args=[saved.id]),
            "saved_at": timezone.localtime(saved.updated_at).strftime("%H:%M:%S"),
            "problems": draft_services.recipients_check(
                to=data["to"], cc=data["cc"], bcc=data["bcc"], require_one=False
            ),
        }
    )


@csrf_exempt
@require_POST
def draft_attachment_upload(request: HttpRequest, draft_id: int) -> JsonResponse:
    """One file (field ``file``) attached to a draft, streamed to blob storage. A request longer
    than the attachment limit is refused from its Content-Length before anything parses its
    body, which is why the CSRF check (it reads the form) runs after that, in ``_upload``."""
    limit = settings.MAILSITE_COMPOSE_MAX_ATTACHMENT_BYTES
    if (_int_or_none(request.META.get("CONTENT_LENGTH")) or 0) > limit + UPLOAD_OVERHEAD:
        problem = f"That file is too large: attachments can be at most {draft_services.size_text(limit)}."
        return JsonResponse({"error": problem}, status=413)
    return _upload(request, draft_id)


@csrf_protect
def _upload(request: HttpRequest, draft_id: int) -> JsonResponse:
    mailbox = _mailbox_or_404(request)
    current = selectors_drafts.draft_get(mailbox=mailbox, draft_id=draft_id)
    if current is None:
        raise Http404("No such draft")
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "No file was received."}, status=400)
    try:
        attachment = draft_services.draft_attach(draft=current, upload=upload)
    except draft_services.AttachmentRejected as rejected:
        return JsonResponse({"error": rejected.message}, status=413)
    return JsonResponse(
        {
            "id": attachment.id,
            "filename": attachment.filename,
            "content_type": attachment.content_type,
            "size": attachment.size,
            "size_text": draft_services.size_text(attachment.size),
        }
    )


@require_GET
def contacts_autocomplete(request: HttpRequest) -> JsonResponse:
    """Contacts of the user's mailbox matching ``?q=`` by address or name prefix."""
    mailbox = _mailbox_or_404(request)
    contacts = selectors_drafts.contacts_autocomplete(mailbox=mailbox, query=request.GET.get("q", "")[:320])
    return JsonResponse(
        {
            "results": [
                {
                    "address": c.address,
                    "name": c.display_name,
                    "value": draft_services.format_address(c.display_name, c.address),
                }
                for c in contacts
            ]
        }
    )
