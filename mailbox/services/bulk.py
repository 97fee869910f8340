"""Thread-list actions on many conversations at once, and their exact undo.

An action on threads acts on the messages of those threads in the user's mailbox (ids from
another mailbox match nothing). Before it runs, each message's read flag, star and labels are
recorded; afterwards only the messages it changed are kept in the ``Undo`` record, which
``undo_apply`` plays back through the same flag services — so an undo reverses exactly what the
action changed, and leaves alone what other tabs changed meanwhile on other messages.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction

from mailbox.models import Label, Mailbox, Message, MessageLabel
from mailbox.services.flags import (
    messages_delete,
    messages_label_add,
    messages_label_remove,
    messages_mark_read,
    messages_restore,
    messages_star,
    messages_trash,
)

ACTIONS = (
    "archive",
    "trash",
    "restore",
    "delete_forever",
    "empty_trash",
    "read",
    "unread",
    "star",
    "unstar",
    "add_label",
    "remove_label",
    "move",
    "spam",
    "not_spam",
)
LABEL_ACTIONS = ("add_label", "remove_label", "move")
IRREVERSIBLE = ("delete_forever", "empty_trash")

# (is_read, is_starred, sorted label ids) of one message
MessageState = tuple[bool, bool, tuple[int, ...]]


@dataclass
class Undo:
    """What an action changed: each changed message's state before it. JSON-friendly (session)."""

    action: str
    before: dict[int, MessageState] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"action": self.action, "before": {str(k): [r, s, list(ls)] for k, (r, s, ls) in self.before.items()}}

    @classmethod
    def from_json(cls, data: object) -> "Undo | None":
        """Rebuild from the session; ``None`` for anything malformed."""
        try:
            before = {int(k): (bool(v[0]), bool(v[1]), tuple(int(x) for x in v[2])) for k, v in data["before"].items()}
            return cls(action=str(data["action"]), before=before)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return None


@dataclass(frozen=True)
class ActionResult:
    changed: int
    undo: Undo | None


def messages_state(*, mailbox: Mailbox, message_ids: list[int]) -> dict[int, MessageState]:
    """The read flag, star and labels of each message of the mailbox among ``message_ids``."""
    labels: dict[int, list[int]] = defaultdict(list)
    for message_id, label_id in MessageLabel.objects.filter(mailbox=mailbox, message_id__in=message_ids).values_list(
        "message_id", "label_id"
    ):
        labels[message_id].append(label_id)
    rows = Message.objects.filter(mailbox=mailbox, pk__in=message_ids).values_list("id", "is_read", "is_starred")
    return {i: (is_read, starred, tuple(sorted(labels[i]))) for i, is_read, starred in rows}


def _role_label(mailbox: Mailbox, role: str) -> Label:
    return Label.objects.get(mailbox=mailbox, role=role)


def _thread_message_ids(mailbox: Mailbox, thread_ids: list[int]) -> list[int]:
    return list(Message.objects.filter(mailbox=mailbox, thread_id__in=thread_ids).values_list("id", flat=True))


def _latest_message_ids(mailbox: Mailbox, thread_ids: list[int]) -> list[int]:
    """The newest message of each thread: a star marks the conversation's latest message, as in Gmail."""
    rows = (
        Message.objects.filter(mailbox=mailbox, thread_id__in=thread_ids)
        .order_by("thread_id", "-date", "-id")
        .distinct("thread_id")
    )
    return list(rows.values_list("id", flat=True))


def _relabel(mailbox: Mailbox, ids: list[int], *, remove: list[Label], add: list[Label]) -> None:
    for label in remove:
        messages_label_remove(mailbox=mailbox, message_ids=ids, label=label)
    for label in add:
        messages_label_add(mailbox=mailbox, message_ids=ids, label=label)


def _move_to_inbox(mailbox: Mailbox, ids: list[int], current: Label | None, role: Callable[[str], Label]) -> None:
    """Into the Inbox, and out of Trash and Spam with it (a conversation is never in the Inbox and
    the bin at once): from Trash as Restore does (the mailbox's own messages go back to Sent)."""
    trash, spam = role(Label.Role.TRASH), role(Label.Role.SPAM)
    if current == trash:
        messages_restore(mailbox=mailbox, message_ids=ids)
        return
    source = [current] if current is not None and current.role in ("", Label.Role.SPAM) else []
    _relabel(mailbox, ids, remove=[*source, trash, spam], add=[role(Label.Role.INBOX)])


def _run(
    mailbox: Mailbox,
    action: str,
    ids: list[int],
    thread_ids: list[int],
    label: Label | None,
    current: Label | None,
    tab: str,
) -> None:
    """Dispatch one action over the messages ``ids`` (of the threads ``thread_ids``)."""
    role = partial(_role_label, mailbox)
    if action == "archive":
        _relabel(mailbox, ids, remove=[role(Label.Role.INBOX)], add=[])
    elif action == "trash":
        messages_trash(mailbox=mailbox, message_ids=ids)
    elif action == "restore":
        messages_restore(mailbox=mailbox, message_ids=ids)
    elif action == "delete_forever":
        messages_delete(mailbox=mailbox, message_ids=ids)
    elif action in ("read", "unread"):
        messages_mark_read(mailbox=mailbox, message_ids=ids, is_read=action == "read")
    elif action == "star":
        messages_star(mailbox=mailbox, message_ids=_latest_message_ids(mailbox, thread_ids), is_starred=True, tab=tab)
    elif action == "unstar":
        messages_star(mailbox=mailbox, message_ids=ids, is_starred=False, tab=tab)
    elif action == "add_label":
        _relabel(mailbox, ids, remove=[], add=[label])
    elif action == "remove_label":
        _relabel(mailbox, ids, remove=[label], add=[])
    elif action == "move" and label.role == Label.Role.INBOX:
        _move_to_inbox(mailbox, ids, current, role)
    elif action == "move":
        source = current if current is not None and current != label else role(Label.Role.INBOX)
        _relabel(mailbox, ids, remove=[source], add=[label])
    elif action == "spam":
        _relabel(mailbox, ids, remove=[role(Label.Role.INBOX)], add=[role(Label.Role.SPAM)])
    elif action == "not_spam":
        _relabel(mailbox, ids, remove=[role(Label.Role.SPAM)], add=[role(Label.Role.INBOX)])


@transaction.atomic
def threads_action_apply(
    *,
    mailbox: Mailbox,
    action: str,
    thread_ids: list[int],
    label: Label | None = None,
    current: Label | None = None,
    tab: str = "",
) -> ActionResult:
    """Apply a list action to the mailbox's threads among ``thread_ids``.

    ``label`` is required for add_label/remove_label/move; ``current`` is the label being viewed
    (what "move" takes off; Inbox when absent). ``empty_trash`` ignores ``thread_ids`` and deletes
    every message under Trash. Returns how many messages changed and the undo record (``None``
    for the irreversible deletes). ``tab``: the browser tab a star or unstar was made from
    (``mailbox.live``), which redraws its row itself (the other actions reload the page).
    """
    if action not in ACTIONS:
        raise ValidationError(f"Unknown action {action!r}.")
    for given in (label, current):
        if given is not None and given.mailbox_id != mailbox.id:
            raise ValidationError("No such label in this mailbox.")
    if action in LABEL_ACTIONS and label is None:
        raise ValidationError("Choose a label.")
    if action == "empty_trash":
        trash = _role_label(mailbox, Label.Role.TRASH)
        ids = list(MessageLabel.objects.filter(mailbox=mailbox, label=trash).values_list("message_id", flat=True))
        return ActionResult(changed=messages_delete(mailbox=mailbox, message_ids=ids) if ids else 0, undo=None)
    ids = _thread_message_ids(mailbox, thread_ids)
    if not ids:
        return ActionResult(changed=0, undo=None)
    before = messages_state(mailbox=mailbox, message_ids=ids)
    _run(mailbox, action, ids, thread_ids, label, current, tab)
    if action in IRREVERSIBLE:
        return ActionResult(changed=len(before), undo=None)
    after = messages_state(mailbox=mailbox, message_ids=ids)
    changed = {i: state for i, state in before.items() if after.get(i) != state}
    return ActionResult(changed=len(changed), undo=Undo(action=action, before=changed) if changed else None)


@transaction.atomic
def undo_apply(*, mailbox: Mailbox, undo: Undo) -> int:
    """Put the messages recorded in ``undo`` back as they were; messages deleted since, and labels
    deleted since, are skipped. Returns how many messages were restored."""
    now = messages_state(mailbox=mailbox, message_ids=list(undo.before))
    existing_labels = {label.id: label for label in Label.objects.filter(mailbox=mailbox)}
    read, unread, star, unstar = [], [], [], []
    add: dict[int, list[int]] = defaultdict(list)
    remove: dict[int, list[int]] = defaultdict(list)
    for message_id, current in now.items():
        was_read, was_starred, was_labels = undo.before[message_id]
        if current[0] != was_read:
            (read if was_read else unread).append(message_id)
        if current[1] != was_starred:
            (star if was_starred else unstar).append(message_id)
        for label_id in set(was_labels) - set(current[2]):
            add[label_id].append(message_id)
        for label_id in set(current[2]) - set(was_labels):
            remove[label_id].append(message_id)
    for label_id, ids in sorted(remove.items()):
        messages_label_remove(mailbox=mailbox, message_ids=ids, label=existing_labels[label_id])
    for label_id, ids in sorted(add.items()):
        if label_id in existing_labels:
            messages_label_add(mailbox=mailbox, message_ids=ids, label=existing_labels[label_id])
    for ids, flag in ((read, True), (unread, False)):
        if ids:
            messages_mark_read(mailbox=mailbox, message_ids=ids, is_read=flag)
    for ids, flag in ((star, True), (unstar, False)):
        if ids:
            messages_star(mailbox=mailbox, message_ids=ids, is_starred=flag)
    return len(now)
