"""Server-rendered pages of the mailbox. Thin: a selector call and a template."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from mailbox import selectors
from mailbox.models import Label
from mailbox.search import SearchQueryError, thread_search


@require_GET
def thread_list(request: HttpRequest, label_id: int | None = None) -> HttpResponse:
    """A label's threads (the Inbox by default), newest first, 50 a page."""
    mailbox = selectors.mailbox_get_for_user(user=request.user)
    if mailbox is None:
        return render(request, "mailbox/no_mailbox.html", status=404)
    if label_id is None:
        label = selectors.label_get_by_role(mailbox=mailbox, role=Label.Role.INBOX)
    else:
        label = selectors.label_get_for_mailbox(mailbox=mailbox, label_id=label_id)
        if label is None:
            raise Http404("No such label")
    older_than = selectors.Cursor.decode(request.GET.get("older", ""))
    page = selectors.thread_list_for_label(mailbox=mailbox, label=label, older_than=older_than)
    unread = selectors.label_unread_counts(mailbox=mailbox)
    labels = [(lb, unread.get(lb.id, 0)) for lb in selectors.label_list(mailbox=mailbox)]
    context = {
        "mailbox": mailbox,
        "label": label,
        "labels": labels,
        "label_unread": unread.get(label.id, 0),
        "page": page,
        "is_first_page": older_than is None,
    }
    return render(request, "mailbox/thread_list.html", context)


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Threads matching the query ``q`` (Gmail-style operators), in the thread-list page.

    A malformed query shows its message above an empty list, never an error page."""
    mailbox = selectors.mailbox_get_for_user(user=request.user)
    if mailbox is None:
        return render(request, "mailbox/no_mailbox.html", status=404)
    query = request.GET.get("q", "").strip()
    older_than = selectors.Cursor.decode(request.GET.get("older", ""))
    try:
        page, search_error = thread_search(mailbox=mailbox, query=query, older_than=older_than), ""
    except SearchQueryError as error:
        page, search_error = selectors.ThreadPage(threads=[], older=None), str(error)
    unread = selectors.label_unread_counts(mailbox=mailbox)
    context = {
        "mailbox": mailbox,
        "label": None,
        "labels": [(lb, unread.get(lb.id, 0)) for lb in selectors.label_list(mailbox=mailbox)],
        "label_unread": 0,
        "page": page,
        "is_first_page": older_than is None,
        "query": query,
        "search_error": search_error,
    }
    return render(request, "mailbox/thread_list.html", context)
