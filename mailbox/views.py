"""Server-rendered pages of the mailbox. Thin: a selector or service call and a template.

Every view works inside the requesting user's mailbox: ids from another mailbox are not found.
"""

import json
from typing import Any
from urllib.parse import quote_plus

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailbox import selectors, selectors_deleting
from mailbox.forms import LabelForm, SettingsForm, ThreadActionForm, ThreadMergeForm
from mailbox.live import TAB_HEADER, live_cursor_clean, tab_id_clean
from mailbox.models import Label, Mailbox
from mailbox.navigation import back_query, local_path
from mailbox.rows import ROW_TEMPLATE, row_views, rows_html, senders, short_date
from mailbox.search import SearchQueryError, thread_search
from mailbox.services import bulk, preferences, thread_merge
from mailsite.jinja import url
from threads.models import Thread

UNDO_SESSION_KEY = "mailbox_undo"
UNDO_NOTICE_KEY = "mailbox_undo_notice"
# The order of the sidebar's system entries; user labels follow.
SIDEBAR = ("inbox", "starred", "sent", "drafts", "all", "spam", "trash")
ACTION_DONE = {
    "archive": "Archived",
    "trash": "Moved to Trash",
    "restore": "Moved to Inbox",
    "delete_forever": "Deleted forever",
    "empty_trash": "Trash emptied",
    "read": "Marked as read",
    "unread": "Marked as unread",
    "star": "Starred",
    "unstar": "Unstarred",
    "add_label": "Labelled",
    "remove_label": "Label removed",
    "move": "Moved",
    "spam": "Reported as spam",
    "not_spam": "Moved to Inbox (not spam)",
}


def _mailbox(request: HttpRequest) -> Mailbox:
    mailbox = selectors.mailbox_get_for_user(user=request.user)
    if mailbox is None:
        raise Http404("This account has no mailbox.")
    return mailbox


def _url(name: str, *args: int) -> str:
    """``reverse``, remembered per process: a list page names a dozen fixed routes, and reversing
    them each time was several per cent of its CPU."""
    return url(name, *args)


def list_url(view: selectors.ThreadListView) -> str:
    if view.kind == "search":
        return _url("search")
    if view.kind != "label":
        return _url("starred" if view.kind == "starred" else "all_mail")
    if view.label.role == Label.Role.INBOX:
        return _url("inbox")
    return _url("label", view.label.id)


def _sidebar(labels: list[Label], unread: dict[int, int], current: str) -> list[dict[str, Any]]:
    """The sidebar's entries: system lists in Gmail's order, then user labels."""
    by_role = {label.role: label for label in labels if label.role}
    entries = []
    for key in SIDEBAR:
        label = by_role.get(key)
        if key in ("starred", "all"):
            view = selectors.ThreadListView(kind=key)
        elif label is not None:
            view = selectors.ThreadListView(kind="label", label=label)
        else:
            continue
        entries.append(_entry(view, unread, current))
    user_labels = [label for label in labels if not label.role]
    entries += [_entry(selectors.ThreadListView(kind="label", label=label), unread, current) for label in user_labels]
    return entries


def _entry(view: selectors.ThreadListView, unread: dict[int, int], current: str) -> dict[str, Any]:
    label = view.label
    # Unread counts where Gmail shows them: not for Sent, Trash or All mail.
    counted = label is not None and label.role not in (Label.Role.SENT, Label.Role.TRASH)
    return {
        "key": view.key,
        "role": (label.role if label is not None else view.kind) or "label",
        "name": view.name,
        # Drafts are their own rows (compose), listed on their own page.
        "url": _url("drafts") if label is not None and label.role == Label.Role.DRAFTS else list_url(view),
        "unread": unread.get(label.id, 0) if counted else 0,
        "colour": label.colour if label is not None else "",
        "is_user_label": label is not None and not label.role,
        "current": view.key == current,
    }


def _decorate(
    threads: list[Thread] | list[selectors.ThreadRow],
    mailbox: Mailbox,
    labels: list[Label],
    view: selectors.ThreadListView,
) -> None:
    """Give each thread its label chips: its user labels in the sidebar's order, leaving out the
    list's own label. A list page's rows come with their label ids; other threads' are read in one
    query for the page."""
    shown = {label.id: label for label in labels if not label.role and label != view.label}
    rank = {label_id: index for index, label_id in enumerate(shown)}
    if all(isinstance(t, selectors.ThreadRow) for t in threads):
        label_ids = {t.id: t.label_ids for t in threads}
    else:
        label_ids = selectors.thread_chips(mailbox=mailbox, thread_ids=[t.id for t in threads])
    for thread in threads:
        chips = [i for i in label_ids.get(thread.id, ()) if i in shown]
        if len(chips) > 1:
            chips.sort(key=rank.__getitem__)
        thread.chips = [shown[i] for i in chips]


def _move_targets(labels: list[Label]) -> list[Label]:
    """What a list's Move menu offers: the Inbox (the way back from All mail, a label or a search),
    then the user labels."""
    return [label for label in labels if label.role == Label.Role.INBOX] + [label for label in labels if not label.role]


def _page_context(
    request: HttpRequest,
    mailbox: Mailbox,
    view: selectors.ThreadListView,
    page: selectors.ThreadPage | None = None,
    overview: selectors.LabelOverview | None = None,
) -> dict[str, Any]:
    older = selectors.Cursor.decode(request.GET.get("older", ""))
    newer = selectors.Cursor.decode(request.GET.get("newer", "")) if older is None else None
    overview = selectors.label_overview(mailbox=mailbox) if overview is None else overview
    if page is None:
        page = selectors.thread_list(mailbox=mailbox, view=view, older_than=older, newer_than=newer)
    labels, unread = overview.labels, overview.unread
    _decorate(page.threads, mailbox, labels, view)
    rows = row_views(page.threads, mailbox.own_addresses, back=back_query(request.get_full_path()))
    return {
        "mailbox": mailbox,
        "view": view,
        "label": view.label,
        "list_name": view.name,
        "list_url": list_url(view),
        "sidebar": _sidebar(labels, unread, view.key),
        "user_labels": [label for label in labels if not label.role],
        "move_targets": _move_targets(labels),
        "list_key": view.key,
        "label_unread": unread.get(view.label.id, 0) if view.label is not None else 0,
        "page": page,
        "rows": rows,
        "rows_html": rows_html(rows),
        "is_first_page": older is None and newer is None,
        "live_cursor": overview.live_cursor,
        "undo_notice": request.session.pop(UNDO_NOTICE_KEY, None),
        "can_undo": UNDO_SESSION_KEY in request.session,
        "is_search": False,
    }


def _render_list(request: HttpRequest, view_for: Any) -> HttpResponse:
    mailbox = selectors.mailbox_get_for_user(user=request.user)
    if mailbox is None:
        return render(request, "mailbox/no_mailbox.html", status=404, using="jinja2")
    # The mailbox's labels, read once with their unread counts: the list's own label is among
    # them, and so are the sidebar's.
    overview = selectors.label_overview(mailbox=mailbox)
    view = view_for(overview.labels)
    if view is None:
        raise Http404("No such label")
    context = _page_context(request, mailbox, view, overview=overview)
    return render(request, "mailbox/thread_list.html", context, using="jinja2")


@require_GET
def thread_list(request: HttpRequest, label_id: int | None = None) -> HttpResponse:
    """A label's threads (the Inbox by default), newest first, 50 a page."""

    def view_for(labels: list[Label]) -> selectors.ThreadListView | None:
        if label_id is None:
            label = next(label for label in labels if label.role == Label.Role.INBOX)
        else:
            label = next((label for label in labels if label.id == label_id), None)
        return selectors.ThreadListView(kind="label", label=label) if label is not None else None

    return _render_list(request, view_for)


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Threads matching the query ``q`` (Gmail-style operators), in the thread-list page.

    A malformed query shows its message above an empty list, never an error page."""
    mailbox = selectors.mailbox_get_for_user(user=request.user)
    if mailbox is None:
        return render(request, "mailbox/no_mailbox.html", status=404, using="jinja2")
    query = request.GET.get("q", "").strip()
    older_than = selectors.Cursor.decode(request.GET.get("older", ""))
    # Before the rows: the live updates' cursor must not count as seen a change the rows missed.
    overview = selectors.label_overview(mailbox=mailbox)
    try:
        page, search_error = thread_search(mailbox=mailbox, query=query, older_than=older_than), ""
    except SearchQueryError as error:
        page, search_error = selectors.ThreadPage(threads=[], older=None), str(error)
    context = _page_context(request, mailbox, selectors.ThreadListView(kind="search"), page, overview=overview)
    pager_query = f"q={quote_plus(query)}&"
    context.update(
        query=query,
        search_error=search_error,
        is_search=True,
        list_name=f"Search: {query}" if query else "Search",
        list_url=f"{reverse('search')}?{pager_query}",
        pager_query=pager_query,
    )
    return render(request, "mailbox/thread_list.html", context, using="jinja2")


@require_GET
def starred_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request, lambda labels: selectors.ThreadListView(kind="starred"))


@require_GET
def all_mail_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request, lambda labels: selectors.ThreadListView(kind="all"))


def _label_or_404(mailbox: Mailbox, label_id: int | None) -> Label | None:
    if label_id is None:
        return None
    label = selectors.label_get_for_mailbox(mailbox=mailbox, label_id=label_id)
    if label is None:
        raise Http404("No such label")
    return label


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_POST
def threads_action(request: HttpRequest) -> HttpResponse:
    """Apply a toolbar action to the selected threads, remember how to undo it, and go back."""
    mailbox = _mailbox(request)
    form = ThreadActionForm(request.POST)
    fallback = reverse("inbox")
    if not form.is_valid():
        error = " ".join(str(e) for errors in form.errors.values() for e in errors)
        return _action_answer(request, form.safe_next(fallback), error=error or "That action could not be done.")
    data = form.cleaned_data
    if data["action"] in bulk.IRREVERSIBLE and not data["confirm"]:
        return _confirm_delete(request, mailbox, form)
    label = _label_or_404(mailbox, data.get("label"))
    current_view = selectors.thread_list_view_get(mailbox=mailbox, key=data.get("current") or "")
    try:
        result = bulk.threads_action_apply(
            mailbox=mailbox,
            action=data["action"],
            thread_ids=data["thread"],
            label=label,
            current=current_view.label if current_view is not None else None,
            tab=tab_id_clean(request.headers.get(TAB_HEADER)),
        )
    except ValidationError as exc:
        return _action_answer(request, form.safe_next(fallback), error=" ".join(exc.messages))
    if result.undo is not None:
        request.session[UNDO_SESSION_KEY] = result.undo.to_json()
        request.session[UNDO_NOTICE_KEY] = f"{ACTION_DONE[data['action']]}."
    else:
        request.session.pop(UNDO_SESSION_KEY, None)
        messages.info(request, f"{ACTION_DONE[data['action']]}." if result.changed else "Nothing changed.")
    return _action_answer(request, form.safe_next(fallback), undo=result.undo is not None)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _render_confirm(request: HttpRequest, mailbox: Mailbox, **context: Any) -> HttpResponse:
    """The page that asks before an irreversible action: ``heading``, ``detail``, ``action_url``,
    the hidden ``fields`` to post again (with confirm=1), ``confirm_text`` and ``cancel_url``."""
    return render(request, "mailbox/confirm.html", {"mailbox": mailbox, **context}, using="jinja2")


def _confirm_delete(request: HttpRequest, mailbox: Mailbox, form: ThreadActionForm) -> HttpResponse:
    """Delete forever / Empty Trash not yet confirmed: say how much would go and ask; nothing is
    deleted. Straight back when there is nothing to delete."""
    data, next_url = form.cleaned_data, form.safe_next(reverse("inbox"))
    if data["action"] == "empty_trash":
        scope = selectors_deleting.trash_deletion_scope(mailbox=mailbox)
        heading, confirm_text = "Empty Trash?", "Empty Trash"
    else:
        scope = selectors_deleting.threads_deletion_scope(mailbox=mailbox, thread_ids=data["thread"])
        heading, confirm_text = "Delete forever?", "Delete forever"
    if not scope.messages:
        messages.info(request, "Nothing to delete.")
        return _action_answer(request, next_url)
    if _wants_json(request):
        return _action_answer(request, next_url, error="Deleting forever needs a confirmation.")
    fields = [("action", data["action"]), ("next", next_url), ("current", data["current"])]
    fields += [("thread", str(thread_id)) for thread_id in data["thread"]]
    detail = f"{_plural(scope.threads, 'conversation')} ({_plural(scope.messages, 'message')}) will be deleted forever."
    return _render_confirm(
        request,
        mailbox,
        heading=heading,
        detail=detail,
        action_url=reverse("threads_action"),
        fields=fields,
        confirm_text=confirm_text,
        cancel_url=local_path(data["cancel"]) or next_url,
    )


def _action_answer(request: HttpRequest, next_url: str, *, error: str = "", undo: bool = False) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"ok": not error, "error": error, "undo": undo}, status=400 if error else 200)
    if error:
        messages.error(request, error)
    return HttpResponseRedirect(next_url)


@require_POST
def threads_merge(request: HttpRequest) -> HttpResponse:
    """Merge the selected conversations: without ``into``, a page to choose the one kept (the
    newest is preselected); with it, merge and go back to the list. Not undoable: the merged
    threads are gone (a message can be split off again from the conversation)."""
    mailbox = _mailbox(request)
    form = ThreadMergeForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect(form.safe_next(reverse("inbox")))
    data, next_url = form.cleaned_data, form.safe_next(reverse("inbox"))
    threads = selectors.threads_get_for_mailbox(mailbox=mailbox, thread_ids=data["thread"])
    if len(threads) != len(data["thread"]):
        raise Http404("No such conversation")
    if len(threads) < 2:
        messages.error(request, "Select two or more conversations to merge.")
        return redirect(next_url)
    if data["into"] is None:
        # Each choice's senders and date, as a thread row shows them.
        choices = [(t, senders(t, mailbox.own_addresses), short_date(t.last_message_at)) for t in threads]
        context = {"mailbox": mailbox, "threads": threads, "choices": choices, "next": next_url}
        return render(request, "mailbox/threads_merge.html", context, using="jinja2")
    absorbed = [t.id for t in threads if t.id != data["into"]]
    try:
        kept = thread_merge(mailbox=mailbox, thread_ids=absorbed, into_thread_id=data["into"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.info(request, f"Merged {len(threads)} conversations into “{kept.subject or '(no subject)'}”.")
    return redirect(next_url)


@require_POST
def undo(request: HttpRequest) -> HttpResponse:
    """Reverse the last list action of this session, exactly as it was recorded."""
    mailbox = _mailbox(request)
    record = bulk.Undo.from_json(request.session.pop(UNDO_SESSION_KEY, None))
    request.session.pop(UNDO_NOTICE_KEY, None)
    if record is None:
        messages.info(request, "Nothing to undo.")
    else:
        bulk.undo_apply(mailbox=mailbox, undo=record)
        messages.info(request, "Action undone.")
    form = ThreadActionForm(request.POST)
    return _action_answer(request, form.safe_next(reverse("inbox")))


@require_GET
def thread_row(request: HttpRequest, thread_id: int) -> HttpResponse:
    """One thread's row as the list ``?label=`` shows it (the partial of a full page), for live
    updates; 204 when the thread is not (or no longer) in that list. The unread counts per label
    come along in the ``X-Unread-Counts`` header, so the sidebar and title update in the same trip.
    ``?back=`` is the path of the page asking, which the row's link carries (as on a full page)."""
    mailbox = _mailbox(request)
    view = selectors.thread_list_view_get(mailbox=mailbox, key=request.GET.get("label", ""))
    if view is None:
        raise Http404("No such list")
    thread = selectors.thread_in_list(mailbox=mailbox, view=view, thread_id=thread_id)
    if thread is None and not Thread.objects.filter(mailbox_id=mailbox.id, pk=thread_id).exists():
        raise Http404("No such conversation")
    unread = selectors.label_unread_counts(mailbox=mailbox)
    if thread is None:
        response = HttpResponse(status=204)
    else:
        labels = selectors.label_list(mailbox=mailbox)
        _decorate([thread], mailbox, labels, view)
        back = local_path(request.GET.get("back", ""))
        context = {"rows": row_views([thread], mailbox.own_addresses, back=back_query(back) if back else "")}
        response = render(request, ROW_TEMPLATE, context, using="jinja2")
    response["X-Unread-Counts"] = json.dumps({str(k): v for k, v in unread.items()})
    return response


@require_GET
def events_since(request: HttpRequest) -> JsonResponse:
    """What changed in the mailbox since the cursor ``?after=`` (``selectors.live_cursor``): the
    thread ids to refresh, but for changes made from the asking tab (``?tab=``, see
    ``mailbox.live``), with the event ids naming each (``thread_events``: a tab skips a thread whose
    events it has all heard live), and ``latest``, the cursor to catch up from next time."""
    mailbox = _mailbox(request)
    raw_after = request.GET.get("after", "")
    after = live_cursor_clean(raw_after)
    if after is None and raw_after.isascii() and raw_after.isdigit() and int(raw_after) > 0:
        # A tab loaded before the cursor became a snapshot counts event ids. Its script reloads the
        # page when told that its catch-up is incomplete, and so it gets the current script. Not
        # for 0, which this script sends when its page gave it no cursor: it would reload forever.
        return JsonResponse({"complete": False})
    if after is None:
        return JsonResponse({"error": "after must be a cursor this server handed out"}, status=400)
    tab = tab_id_clean(request.GET.get("tab"))
    catch_up = selectors.events_since(mailbox=mailbox, after=after, tab=tab)
    return JsonResponse(
        {
            "threads": catch_up.thread_ids,
            "labels_deleted": catch_up.label_ids_deleted,
            "labels_changed": catch_up.label_ids_changed,
            "latest": catch_up.latest,
            "complete": catch_up.complete,
            "thread_events": {str(thread_id): ids for thread_id, ids in catch_up.thread_events.items()},
        }
    )


@require_GET
def labels_sidebar(request: HttpRequest) -> HttpResponse:
    """The sidebar and the label menus' options as a full page of list ``?current=`` renders them,
    for a tab to redraw after a label was created, renamed or recoloured elsewhere."""
    mailbox = _mailbox(request)
    overview = selectors.label_overview(mailbox=mailbox)
    current = request.GET.get("current", "")
    context = {
        "sidebar": _sidebar(overview.labels, overview.unread, current),
        "user_labels": [label for label in overview.labels if not label.role],
        "move_targets": _move_targets(overview.labels),
        "list_key": current,
    }
    return render(request, "mailbox/partials/labels_live.html", context, using="jinja2")


@require_http_methods(["GET", "POST"])
def labels(request: HttpRequest) -> HttpResponse:
    """The user's labels: create one, and each with its rename/colour and delete forms."""
    mailbox = _mailbox(request)
    form = LabelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            preferences.user_label_create(mailbox=mailbox, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error("name", " ".join(exc.messages))
        else:
            messages.info(request, f"Label “{form.cleaned_data['name']}” created.")
            return redirect("labels")
    user_labels = [lb for lb in selectors.label_list(mailbox=mailbox) if not lb.role]
    rows = [(lb, LabelForm(initial={"name": lb.name, "colour": lb.colour}, prefix=f"l{lb.id}")) for lb in user_labels]
    status = 400 if form.errors else 200
    return render(
        request, "mailbox/labels.html", {"mailbox": mailbox, "form": form, "rows": rows}, status=status, using="jinja2"
    )


@require_POST
def label_edit(request: HttpRequest, label_id: int) -> HttpResponse:
    mailbox = _mailbox(request)
    label = _label_or_404(mailbox, label_id)
    form = LabelForm(request.POST, prefix=f"l{label.id}")
    if not form.is_valid():
        messages.error(request, "Give the label a name and one of the colours.")
        return redirect("labels")
    try:
        preferences.user_label_update(label=label, **form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.info(request, "Label saved.")
    return redirect("labels")


@require_POST
def label_delete(request: HttpRequest, label_id: int) -> HttpResponse:
    mailbox = _mailbox(request)
    label = _label_or_404(mailbox, label_id)
    if request.POST.get("confirm") != "1" and not label.is_system:
        count = selectors_deleting.label_thread_count(mailbox=mailbox, label=label)
        return _render_confirm(
            request,
            mailbox,
            heading=f"Delete the label “{label.name}”?",
            detail=f"It comes off {_plural(count, 'conversation')}; the conversations themselves stay.",
            action_url=reverse("label_delete", args=[label.id]),
            fields=[],
            confirm_text="Delete label",
            cancel_url=reverse("labels"),
        )
    try:
        preferences.user_label_delete(label=label)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.info(request, f"Label “{label.name}” deleted.")
    return redirect("labels")


@require_http_methods(["GET", "POST"])
def settings_view(request: HttpRequest) -> HttpResponse:
    mailbox = _mailbox(request)
    initial = {
        "display_name": mailbox.display_name,
        "keyboard_shortcuts": mailbox.keyboard_shortcuts,
        "signature": mailbox.signature,
        "remote_images": mailbox.remote_images,
        "timezone": mailbox.timezone,
    }
    form = SettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            preferences.mailbox_settings_update(mailbox=mailbox, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, " ".join(exc.messages))
        else:
            messages.info(request, "Settings saved.")
            return redirect("settings")
    return render(
        request,
        "mailbox/settings.html",
        {"mailbox": mailbox, "form": form},
        status=400 if form.errors else 200,
        using="jinja2",
    )
