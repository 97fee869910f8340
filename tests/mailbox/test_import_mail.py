"""import_mail: mbox, Maildir, .eml and Gmail Takeout into a mailbox, through the front door."""

import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase

from delivery.models import InboundReceipt
from delivery.selectors import blob_read
from mailbox.importing import gmail_hints, gmail_labels_parse, header_values
from mailbox.models import Label, Message, MessageLabel
from mailbox.services.preferences import user_label_create
from mailsite.models import DomainEvent
from mailsite.stdlib_mailbox import stdlib_mailbox
from tests.conftest import SHARED_CORPORA
from tests.mail import raw_message
from tests.mailbox.test_label_get_or_create import label_published_capture

pytestmark = pytest.mark.django_db

LIST_ARCHIVE = SHARED_CORPORA / "mailing-lists" / "ksummit-discuss.lists.linuxfoundation.org.mbox"


def _import(mailbox, *paths: Path, **options) -> str:
    out = StringIO()
    # The test's transaction never commits: run what each arrival queues on commit (its parse).
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("import_mail", *map(str, paths), mailbox=mailbox.address, no_progress=True, stdout=out, **options)
    return out.getvalue()


def _message(subject: str, *headers: str, to: str = "alice@example.test") -> bytes:
    extra = "".join(f"{h}\n" for h in headers).encode()
    return extra + raw_message(f"{subject.replace(' ', '-')}@example.org", subject, to=to)


def _write_mbox(path: Path, messages: list[bytes]) -> Path:
    with path.open("wb") as handle:
        for raw in messages:
            handle.write(b"From sender@example.org Mon Nov  2 10:00:00 2026\n" + raw.rstrip(b"\n") + b"\n\n")
    return path


def _by_subject(mailbox) -> dict[str, Message]:
    return {m.subject: m for m in Message.objects.filter(mailbox=mailbox)}


def _labels(message: Message) -> set[str]:
    return set(MessageLabel.objects.filter(message=message).values_list("label__name", flat=True))


def test_an_mbox_file_imports_every_message_with_its_exact_bytes(mailbox, tmp_path):
    raws = [_message("first"), _message("second", "Status: RO", "X-Status: F")]
    box = _write_mbox(tmp_path / "archive.mbox", raws)

    output = _import(mailbox, box)

    assert "Imported 2 messages" in output
    messages = _by_subject(mailbox)
    assert {blob_read(blob=m.blob) for m in messages.values()} == set(raws)
    assert (messages["first"].is_read, messages["first"].is_starred) == (False, False)
    assert (messages["second"].is_read, messages["second"].is_starred) == (True, True)
    assert _labels(messages["first"]) == {"Inbox"}
    receipt = InboundReceipt.objects.get(blob=messages["first"].blob)
    assert (receipt.source, receipt.envelope_recipients) == ("import", ["alice@example.test"])


def test_an_mbox_written_by_the_standard_library_reads_back(mailbox, tmp_path):
    box = stdlib_mailbox().mbox(tmp_path / "Sent")
    box.add(_message("sent by me"))
    box.flush()
    box.close()

    _import(mailbox, tmp_path / "Sent")

    assert _labels(Message.objects.get(mailbox=mailbox)) == {"Sent"}


def test_a_maildir_keeps_read_and_starred_flags_and_its_subfolders(mailbox, tmp_path):
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp", ".Work.Projects/cur", ".Work.Projects/new", ".Junk/cur", ".Junk/new"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.host").write_bytes(_message("new one"))
    (maildir / "cur" / "2.host:2,S").write_bytes(_message("seen one"))
    (maildir / "cur" / "3.host:2,FS").write_bytes(_message("starred one"))
    (maildir / "cur" / "4.host:2,ST").write_bytes(_message("trashed one"))
    (maildir / ".Work.Projects" / "cur" / "5.host:2,S").write_bytes(_message("project"))
    (maildir / ".Junk" / "new" / "6.host").write_bytes(_message("junk"))

    _import(mailbox, maildir)

    messages = _by_subject(mailbox)
    assert len(messages) == 6
    assert [messages["new one"].is_read, messages["seen one"].is_read, messages["starred one"].is_starred] == [
        False,
        True,
        True,
    ]
    assert _labels(messages["trashed one"]) == {"Trash"}
    assert _labels(messages["project"]) == {"Work/Projects"}  # a user's folder, not the Inbox
    assert _labels(messages["junk"]) == {"Spam"}
    assert Label.objects.get(mailbox=mailbox, name="Work/Projects").role == ""


def test_eml_files_and_folders_of_them(mailbox, tmp_path):
    single = tmp_path / "one.eml"
    single.write_bytes(_message("single"))
    folder = tmp_path / "saved"
    (folder / "deeper").mkdir(parents=True)
    (folder / "a.eml").write_bytes(_message("in folder"))
    (folder / "deeper" / "b.msg").write_bytes(_message("deeper, no eml suffix"))
    (folder / "notes.txt").write_bytes(b"\x89PNG not mail at all")

    err = StringIO()
    _import(mailbox, single, folder, stderr=err)

    assert set(_by_subject(mailbox)) == {"single", "in folder", "deeper, no eml suffix"}
    assert "notes.txt" in err.getvalue()


GMAIL_TAKEOUT = [
    _message("in the inbox", "X-Gmail-Labels: Inbox,Opened,Important,Category Personal,Travel"),
    _message("unread and starred", "X-Gmail-Labels: Inbox,Unread,Starred,Category Updates"),
    _message("sent by me", "X-Gmail-Labels: Sent,Opened"),
    _message("spam", "X-Gmail-Labels: Spam,Unread"),
    _message("in trash", "X-Gmail-Labels: Trash,Opened"),
    _message("a draft", "X-Gmail-Labels: Drafts"),
    _message(
        "quoted and encoded",
        'X-Gmail-Labels: Inbox,"Work, Projects",Family/Kids,',
        " =?UTF-8?Q?Caf=C3=A9?=,Opened",
    ),
]


def test_a_gmail_takeout_mbox_keeps_labels_read_and_starred(mailbox, tmp_path):
    _import(mailbox, _write_mbox(tmp_path / "All mail Including Spam and Trash.mbox", GMAIL_TAKEOUT))

    messages = _by_subject(mailbox)
    assert _labels(messages["in the inbox"]) == {"Inbox", "Travel"}
    assert (messages["in the inbox"].is_read, messages["in the inbox"].is_starred) == (True, False)
    assert _labels(messages["unread and starred"]) == {"Inbox"}
    assert (messages["unread and starred"].is_read, messages["unread and starred"].is_starred) == (False, True)
    assert _labels(messages["sent by me"]) == {"Sent"}
    assert _labels(messages["spam"]) == {"Spam"}
    assert _labels(messages["in trash"]) == {"Trash"}
    assert _labels(messages["a draft"]) == {"Drafts"}
    assert _labels(messages["quoted and encoded"]) == {"Inbox", "Work, Projects", "Family/Kids", "Café"}
    user_labels = set(Label.objects.filter(mailbox=mailbox, role="").values_list("name", flat=True))
    assert user_labels == {"Travel", "Work, Projects", "Family/Kids", "Café"}


def test_labels_an_import_creates_reach_open_tabs_once_each(mailbox, tmp_path, monkeypatch):
    published = label_published_capture(monkeypatch)
    work = user_label_create(mailbox=mailbox, name="Work")
    archive = [_message("one", "X-Gmail-Labels: Inbox,Travel,Work"), _message("two", "X-Gmail-Labels: Inbox,Travel")]

    _import(mailbox, _write_mbox(tmp_path / "takeout.mbox", archive))

    travel = Label.objects.get(mailbox=mailbox, name="Travel")
    assert [(e["type"], e["label_id"]) for e in published] == [("label.changed", travel.id)]  # not Work again
    changed = DomainEvent.objects.filter(mailbox_id=mailbox.id, event_type=DomainEvent.Type.LABEL_CHANGED)
    assert sorted(changed.values_list("subject_id", flat=True)) == sorted([work.id, travel.id])


def test_an_archived_gmail_message_is_in_no_system_folder(mailbox, tmp_path):
    _import(mailbox, _write_mbox(tmp_path / "takeout.mbox", [_message("archived", "X-Gmail-Labels: Archived,Opened")]))
    assert _labels(Message.objects.get(mailbox=mailbox)) == set()


@pytest.mark.parametrize(
    ("value", "labels"),
    [
        ("Inbox,Opened", ["Inbox", "Opened"]),
        ('"Work, Projects",Family', ["Work, Projects", "Family"]),
        ('"say \\"hi\\"",x', ['say "hi"', "x"]),
        ("=?UTF-8?Q?Caf=C3=A9?=,Inbox", ["Café", "Inbox"]),
        ("=?UTF-8?B?0J/RgNC40LLQtdGC?=", ["Привет"]),
        ("=?x-unknown?Q?abc?=,Inbox", ["=?x-unknown?Q?abc?=", "Inbox"]),
        ("", []),
    ],
)
def test_gmail_label_values_are_decoded_and_split(value, labels):
    assert gmail_labels_parse(value) == labels


def test_gmail_markers_are_state_not_labels():
    hints = gmail_hints(["Archived", "Opened", "Important", "Category Forums", "Chat", "Unread", "Starred", "Books"])
    assert hints == {"label_roles": [], "labels": ["Books"], "is_read": False, "is_starred": True}


def test_only_the_header_block_is_read_for_hints():
    raw = b"Subject: x\r\nX-Gmail-Labels: Inbox,\r\n Travel\r\n\r\nX-Gmail-Labels: Spam\r\n"
    assert header_values(raw) == {"x-gmail-labels": "Inbox, Travel"}


def test_a_second_run_doubles_nothing(mailbox, tmp_path):
    box = _write_mbox(tmp_path / "takeout.mbox", GMAIL_TAKEOUT)
    _import(mailbox, box)
    counts = (Message.objects.count(), InboundReceipt.objects.count(), MessageLabel.objects.count())

    output = _import(mailbox, box)

    assert f"Imported 0 messages into {mailbox.address}" in output
    assert f"{len(GMAIL_TAKEOUT)} already there" in output
    assert (Message.objects.count(), InboundReceipt.objects.count(), MessageLabel.objects.count()) == counts


def test_the_same_archive_into_two_mailboxes_is_two_imports(mailbox, other_mailbox, tmp_path):
    box = _write_mbox(tmp_path / "archive.mbox", [_message("shared", to="alice@example.test, bob@example.test")])
    _import(mailbox, box)
    _import(other_mailbox, box)

    assert Message.objects.filter(mailbox=mailbox).count() == 1
    assert Message.objects.filter(mailbox=other_mailbox).count() == 1
    assert InboundReceipt.objects.values("blob").distinct().count() == 1


def test_extra_labels_apply_to_everything_imported(mailbox, tmp_path):
    _import(mailbox, _write_mbox(tmp_path / "old.mbox", [_message("old")]), label=["Imported"])
    assert _labels(Message.objects.get(mailbox=mailbox)) == {"Inbox", "Imported"}


def test_unknown_mailbox_and_missing_path_are_errors(mailbox, tmp_path):
    with pytest.raises(CommandError, match="No mailbox"):
        call_command("import_mail", str(tmp_path), mailbox="nobody@example.test")
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_mail", str(tmp_path / "missing.mbox"), mailbox=mailbox.address)


def test_the_real_list_archive_imports_every_message(mailbox):
    if not LIST_ARCHIVE.exists():
        pytest.skip("the shared list archive is not beside this clone (CI always has it)")

    output = _import(mailbox, LIST_ARCHIVE)

    assert "Imported 759 messages" in output
    assert Message.objects.filter(mailbox=mailbox).count() == 759
    assert not InboundReceipt.objects.exclude(status=InboundReceipt.Status.PARSED).exists()


class _Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_counts_the_messages_on_a_terminal(mailbox, tmp_path, monkeypatch):
    box = _write_mbox(tmp_path / "archive.mbox", [_message("first"), _message("second"), _message("third")])
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("import_mail", str(box), mailbox=mailbox.address, stdout=StringIO())

    assert "3/3" in terminal.getvalue()


def test_one_import_run_shares_one_correlation_id(mailbox, tmp_path):
    def correlation_ids() -> set[str]:
        return set(InboundReceipt.objects.values_list("correlation_id", flat=True))

    _import(mailbox, _write_mbox(tmp_path / "one.mbox", [_message("first"), _message("second")]))
    first_run = correlation_ids()
    _import(mailbox, _write_mbox(tmp_path / "two.mbox", [_message("third")]))
    second_run = correlation_ids() - first_run

    assert len(first_run) == len(second_run) == 1
    assert all(c.startswith("import-") for c in first_run | second_run)
