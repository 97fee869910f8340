"""Server-rendered pages of the mailbox. Thin: a selector call and a template."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from mailbox import selectors
from mailbox.models import Label


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
