"""Where a page sends the user back to: the list a conversation was opened from.

A list's rows link to their conversation with ``?back=`` (the list's own path and query); the
conversation's back link, ``u`` and the actions that leave it go there. The value comes from the
URL, so it is checked like any redirect target: a path on this site, nothing else.
"""

from urllib.parse import quote, urlsplit

from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme

from mailbox.models import Label
from mailbox.selectors import ThreadListView

MAX_BACK_LENGTH = 2000
# The routes of thread lists, by URL name: what a conversation's "back" may name as its list.
_LIST_ROUTES = ("inbox", "label", "starred", "all_mail", "search")


def local_path(value: str) -> str | None:
    """``value`` if it is a path on this site (``/…``, no scheme, no host, no ``//`` or ``\\``
    trick, no control characters, not overlong); ``None`` otherwise."""
    if not value or len(value) > MAX_BACK_LENGTH or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        return None
    return value if url_has_allowed_host_and_scheme(value, allowed_hosts=None) else None


def back_query(path: str) -> str:
    """The ``?back=`` suffix of a row's link for a list at ``path`` (none for the Inbox, the default)."""
    return "" if path == "/" else f"?back={quote(path, safe='/')}"


def list_from_path(path: str, labels: list[Label]) -> ThreadListView | None:
    """The thread list at the local ``path``, its label found among the mailbox's ``labels`` (no
    query); ``None`` when the path is no list of this mailbox."""
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return None
    if match.url_name not in _LIST_ROUTES:
        return None
    if match.url_name == "starred":
        return ThreadListView(kind="starred")
    if match.url_name == "all_mail":
        return ThreadListView(kind="all")
    if match.url_name == "search":
        return ThreadListView(kind="search")
    wanted = match.kwargs.get("label_id")
    for label in labels:
        if (label.id == wanted) if wanted is not None else label.role == Label.Role.INBOX:
            return ThreadListView(kind="label", label=label)
    return None
