"""What the conversation page offers for its thread: the list's actions, chosen by the thread's
state (Unstar when starred, Not spam in Spam, Restore and Delete forever in Trash) and by the list
it was opened from (where the back link and the actions that leave the page go)."""

from dataclasses import dataclass

from mailbox.models import Label
from mailbox.navigation import back_query, list_from_path
from mailbox.selectors import ThreadListView
from threads.models import Thread


@dataclass(frozen=True)
class ThreadActions:
    mode: str  # "trash", "spam" or "mail": which set of actions the page shows
    in_inbox: bool
    starred: bool
    chips: list[Label]  # the user labels on the thread (each removable)
    addable: list[Label]  # user labels the thread could be given
    move_targets: list[Label]  # Inbox when it is not there, then user labels other than the list's
    back_url: str  # the list it was opened from (the Inbox by default)
    back_name: str
    current: str  # that list's key: what Move takes the thread out of
    here: str  # the conversation's own URL, for the actions that stay on it
    view: ThreadListView | None  # the list it was opened from (``None``: no list of this mailbox)


def thread_actions_for(
    *, thread: Thread, label_ids: frozenset[int], labels: list[Label], back: str | None, inbox_url: str, url: str
) -> ThreadActions:
    """The actions for ``thread``, which carries ``label_ids`` (of the mailbox's ``labels``), opened
    at ``url`` from the local path ``back`` (``None``: from the Inbox)."""
    view = list_from_path(back or inbox_url, labels)
    on_thread = [label for label in labels if label.id in label_ids]
    roles = {label.role for label in on_thread if label.role}
    user_labels = [label for label in labels if not label.role]
    inbox = next(label for label in labels if label.role == Label.Role.INBOX)
    listed = view.label if view is not None else None
    return ThreadActions(
        mode=_mode(roles, listed.role if listed is not None else ""),
        in_inbox=Label.Role.INBOX in roles,
        starred=thread.starred_count > 0,
        chips=[label for label in on_thread if not label.role],
        addable=[label for label in user_labels if label.id not in label_ids],
        move_targets=[
            label for label in ([inbox] if Label.Role.INBOX not in roles else []) + user_labels if label != listed
        ],
        back_url=back or inbox_url,
        back_name=view.name if view is not None else "Back",
        current=view.key if view is not None else "",
        here=url + (back_query(back) if back else ""),
        view=view,
    )


def _mode(roles: set[str], list_role: str) -> str:
    """Trash or Spam actions when the thread is there and was opened from there, or is there and
    not in the Inbox too (a reply may have brought part of it back); the mail actions otherwise."""
    for role in (Label.Role.TRASH, Label.Role.SPAM):
        if role in roles and (list_role == role or Label.Role.INBOX not in roles):
            return str(role)
    return "mail"
