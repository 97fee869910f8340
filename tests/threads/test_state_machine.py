"""Random sequences of everything that changes threads, with zero drift between every summary and its recount.

Deliveries (new conversations, replies with full, partial or no headers, orphans and their late
parents), read/unread, star, labels, Trash, delete forever, split, merge and move, in any order;
after every step each thread of the mailbox must equal its recount from the messages.
Bounded so the whole run takes a few seconds.
"""

import itertools
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from mailbox.models import Label, Message
from mailbox.services import (
    mailbox_create,
    messages_delete,
    messages_label_add,
    messages_label_remove,
    messages_mark_read,
    messages_move_to_thread,
    messages_restore,
    messages_star,
    messages_trash,
    thread_merge,
    thread_split,
)
from mailbox.services.labels import label_get_or_create
from mailsite.models import DomainEvent
from tests.threads.builders import assert_no_drift, deliver
from threads.models import Thread

_mailboxes = itertools.count()
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUBJECTS = ["Budget 2027", "Offsite plan", "hi"]
PEOPLE = ["Carol <carol@example.org>", "Dave <dave@example.org>", "Alice (the mailbox owner)"]


class ThreadsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        n = next(_mailboxes)
        self.mailbox = mailbox_create(address=f"alice{n}@example.test", password=None)
        self.work = label_get_or_create(mailbox=self.mailbox, name="Work")
        self.ids = itertools.count()
        self.orphan_parents: list[tuple[str, str]] = []  # (missing parent id, subject)

    def _messages(self) -> list[Message]:
        return list(Message.objects.filter(mailbox=self.mailbox).order_by("pk"))

    def _pick(self, data: st.DataObject, *, at_most: int = 3) -> list[int]:
        messages = self._messages()
        assume(messages)
        chosen = data.draw(st.lists(st.sampled_from(messages), min_size=1, max_size=at_most, unique=True))
        return [m.pk for m in chosen]

    def _deliver(self, subject: str, sender: str, days: int, **headers) -> Message:
        date = format_datetime(START + timedelta(days=days))
        own = sender.startswith("Alice")
        return deliver(
            self.mailbox,
            f"m{next(self.ids)}@x",
            subject,
            sender=f"Alice <{self.mailbox.address}>" if own else sender,
            to="carol@example.org" if own else self.mailbox.address,
            date=date,
            label_roles=(Label.Role.SENT,) if own else (Label.Role.INBOX,),
            is_read=own,
            **headers,
        )

    @rule(subject=st.sampled_from(SUBJECTS), sender=st.sampled_from(PEOPLE), days=st.integers(0, 40))
    def new_conversation(self, subject, sender, days):
        self._deliver(subject, sender, days)

    @rule(
        data=st.data(),
        sender=st.sampled_from(PEOPLE),
        headers=st.sampled_from(["full", "in-reply-to", "none"]),
        days=st.integers(0, 40),
    )
    def reply(self, data, sender, headers, days):
        messages = self._messages()
        assume(messages)
        parent = data.draw(st.sampled_from(messages))
        chain = {
            "full": {"in_reply_to": parent.message_id, "references": (*parent.references, parent.message_id)},
            "in-reply-to": {"in_reply_to": parent.message_id},
            "none": {},
        }[headers]
        self._deliver(f"Re: {parent.subject}", sender, days, **chain)

    @rule(subject=st.sampled_from(SUBJECTS), sender=st.sampled_from(PEOPLE), days=st.integers(0, 40))
    def reply_to_a_message_not_here_yet(self, subject, sender, days):
        missing = f"late{next(self.ids)}@x"
        self._deliver(f"Re: {subject}", sender, days, in_reply_to=missing, references=(missing,))
        self.orphan_parents.append((missing, subject))

    @rule(data=st.data(), days=st.integers(0, 40))
    def late_parent_arrives(self, data, days):
        assume(self.orphan_parents)
        missing, subject = self.orphan_parents.pop(data.draw(st.integers(0, len(self.orphan_parents) - 1)))
        existing = self._messages()
        chain = {"in_reply_to": existing[0].message_id, "references": (existing[0].message_id,)} if existing else {}
        date = format_datetime(START + timedelta(days=days))
        deliver(self.mailbox, missing, subject, to=self.mailbox.address, date=date, **chain)

    @rule(data=st.data(), read=st.booleans())
    def mark_read(self, data, read):
        messages_mark_read(mailbox=self.mailbox, message_ids=self._pick(data), is_read=read)

    @rule(data=st.data(), starred=st.booleans())
    def star(self, data, starred):
        messages_star(mailbox=self.mailbox, message_ids=self._pick(data), is_starred=starred)

    @rule(data=st.data(), add=st.booleans())
    def label(self, data, add):
        change = messages_label_add if add else messages_label_remove
        change(mailbox=self.mailbox, message_ids=self._pick(data), label=self.work)

    @rule(data=st.data())
    def trash(self, data):
        messages_trash(mailbox=self.mailbox, message_ids=self._pick(data))

    @rule(data=st.data())
    def restore(self, data):
        messages_restore(mailbox=self.mailbox, message_ids=self._pick(data))

    @rule(data=st.data())
    def delete_forever(self, data):
        messages_delete(mailbox=self.mailbox, message_ids=self._pick(data, at_most=2))

    @rule(data=st.data())
    def split(self, data):
        thread_split(mailbox=self.mailbox, message_ids=self._pick(data, at_most=2))

    @rule(data=st.data())
    def merge(self, data):
        threads = list(Thread.objects.filter(mailbox_id=self.mailbox.id).values_list("pk", flat=True))
        assume(len(threads) >= 2)
        into, other = data.draw(st.lists(st.sampled_from(threads), min_size=2, max_size=2, unique=True))
        thread_merge(mailbox=self.mailbox, thread_ids=[other], into_thread_id=into)

    @rule(data=st.data())
    def move(self, data):
        threads = list(Thread.objects.filter(mailbox_id=self.mailbox.id).values_list("pk", flat=True))
        assume(threads)
        target = data.draw(st.sampled_from(threads))
        messages_move_to_thread(mailbox=self.mailbox, message_ids=self._pick(data, at_most=2), thread_id=target)

    @invariant()
    def summaries_equal_their_recount(self):
        assert_no_drift(self.mailbox)

    @invariant()
    def threads_said_to_be_gone_are_gone(self):
        """A thread whose event said it was removed (merged away, emptied, deleted) does not exist."""
        gone = DomainEvent.objects.filter(mailbox_id=self.mailbox.id, payload__has_key="merged_into")
        assert not Thread.objects.filter(pk__in=gone.values("subject_id")).exists()

    @invariant()
    def every_message_is_in_a_thread_of_its_mailbox(self):
        owners = set(
            Thread.objects.filter(pk__in=Message.objects.filter(mailbox=self.mailbox).values("thread_id")).values_list(
                "mailbox_id", flat=True
            )
        )
        assert owners <= {self.mailbox.id}


@pytest.mark.django_db
def test_random_operations_leave_no_drift():
    run_state_machine_as_test(
        ThreadsMachine,
        settings=settings(
            max_examples=6,
            stateful_step_count=12,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
