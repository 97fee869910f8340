from email.message import EmailMessage
from pathlib import Path

import pytest

import mailbox as mailbox_app
from mailsite.stdlib_mailbox import stdlib_mailbox
from tests.conftest import SHARED_CORPORA


def _message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = subject
    msg.set_content("hello")
    return msg


def test_helper_loads_the_standard_library_module_not_our_app():
    module = stdlib_mailbox()
    assert module is not mailbox_app
    assert hasattr(module, "mbox")
    assert hasattr(module, "Maildir")
    assert stdlib_mailbox() is module


def test_mbox_and_maildir_round_trip(tmp_path: Path):
    module = stdlib_mailbox()
    box = module.mbox(tmp_path / "box.mbox")
    box.add(_message("first"))
    box.add(_message("second"))
    box.flush()
    maildir = module.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(_message("third"))

    assert sorted(m["Subject"] for m in module.mbox(tmp_path / "box.mbox")) == ["first", "second"]
    assert [m["Subject"] for m in module.Maildir(tmp_path / "Maildir")] == ["third"]


def test_reads_the_real_list_archive():
    archive = SHARED_CORPORA / "mailing-lists" / "ksummit-discuss.lists.linuxfoundation.org.mbox"
    if not archive.exists():
        pytest.skip("the shared list archive is not beside this clone (CI always has it)")
    assert len(stdlib_mailbox().mbox(archive, create=False)) == 759
