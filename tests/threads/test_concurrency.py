"""Two real worker processes ingesting replies of the same conversations at the same moment make one
thread per conversation: the resolver's advisory locks serialise them."""

import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.db import connection

from mailbox.models import Message
from tests.conftest import REPO_ROOT
from tests.threads.builders import raw_mail

CONVERSATIONS = 12
WORKERS = ("w1", "w2")


def _write_mail(work_dir):
    """Each worker gets, per conversation, a reply to a root neither has seen, then a reply that lost
    its headers to a second topic: both race to start the conversation's thread."""
    for k in range(CONVERSATIONS):
        for n, worker in enumerate(WORKERS):
            by_reference = raw_mail(
                f"ref-{k}-{worker}@x",
                f"Re: Topic {k}",
                in_reply_to=f"root-{k}@x",
                references=(f"root-{k}@x",),
                sender=f"Person {n} <person{n}@example.org>",
                to="alice@example.test",
                cc="carol@example.org",
            )
            headerless = raw_mail(
                f"subj-{k}-{worker}@x",
                f"Re: Plan number {k}",
                sender=f"Person {n} <person{n}@example.org>",
                to="alice@example.test",
                cc="carol@example.org",
            )
            (work_dir / f"{worker}-{k:03d}-a.eml").write_bytes(by_reference)
            (work_dir / f"{worker}-{k:03d}-b.eml").write_bytes(headerless)


def _run_workers(work_dir, mailbox_id):
    command = [sys.executable, "-m", "tests.threads.concurrent_worker", connection.settings_dict["NAME"]]
    workers = [
        subprocess.Popen([*command, str(work_dir), str(mailbox_id), name], cwd=REPO_ROOT, env=os.environ)
        for name in WORKERS
    ]
    deadline = time.monotonic() + 60
    while not all((work_dir / f"{name}.ready").exists() for name in WORKERS):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(w.poll() is None for w in workers), "a worker died while starting"
        time.sleep(0.01)
    (work_dir / "go").touch()
    assert [w.wait(timeout=120) for w in workers] == [0, 0]


@pytest.mark.django_db(transaction=True)
def test_two_processes_replying_to_one_conversation_make_one_thread(mailbox, tmp_path):
    _write_mail(tmp_path)

    _run_workers(tmp_path, mailbox.id)

    messages = Message.objects.filter(mailbox=mailbox)
    assert messages.count() == 4 * CONVERSATIONS
    per_topic = Counter()
    for message_id, thread_id in messages.values_list("message_id", "thread_id"):
        kind, k, _ = message_id.split("-", 2)
        per_topic[(kind, k, thread_id)] += 1
    assert sorted(per_topic.values()) == [2] * (2 * CONVERSATIONS), "a conversation was split into two threads"
