"""Importing mail archives: mbox files, Maildir folders and .eml files, found and read as they are.

Every message goes through the same front door as mail arriving live (``inbound_accept``), with
its exact bytes and, as receipt hints, where it was filed and whether it was read or starred:

- Gmail Takeout mbox: the ``X-Gmail-Labels`` header. Inbox, Sent, Spam, Trash and Drafts become
  system labels, ``Starred`` the star, a missing ``Unread`` means read; Gmail's own markers
  (Opened, Important, Archived, Category …) are dropped; every other label is a user label.
- Other mbox files: ``Status`` (R: read), ``X-Status`` (F: starred) or Thunderbird's
  ``X-Mozilla-Status``; a file named like a system folder (Sent, Trash, Junk…) files it there.
- Maildir: ``new/`` is unread; the ``:2,`` flags of ``cur/`` (S read, F starred, T trashed,
  D draft); Maildir++ sub-folders (``.Work.Projects``) become a system folder or a user label.

Re-running an import changes nothing: each arrival's event id is the mailbox and the sha256 of
the bytes, unique per channel in the database.
"""

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

from delivery.models import InboundReceipt
from delivery.services import Arrival
from mailbox.models import Label, Mailbox
from mailbox.services.ingest import inbound_accept_many
from mailsite.stdlib_mailbox import stdlib_mailbox

# Folder names (mbox file stems, Maildir++ folders) that mean a system folder.
FOLDER_ROLES = {
    "inbox": Label.Role.INBOX,
    "sent": Label.Role.SENT,
    "sent mail": Label.Role.SENT,
    "sent items": Label.Role.SENT,
    "sent messages": Label.Role.SENT,
    "drafts": Label.Role.DRAFTS,
    "draft": Label.Role.DRAFTS,
    "spam": Label.Role.SPAM,
    "junk": Label.Role.SPAM,
    "junk e-mail": Label.Role.SPAM,
    "junk email": Label.Role.SPAM,
    "trash": Label.Role.TRASH,
    "bin": Label.Role.TRASH,
    "deleted items": Label.Role.TRASH,
    "deleted messages": Label.Role.TRASH,
}
# Gmail's own markers in X-Gmail-Labels: state, not labels a user made.
GMAIL_MARKERS = {"opened", "unread", "starred", "important", "archived", "chat", "chats"}
GMAIL_MARKER_PREFIXES = ("category ",)

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLDED_LINE = re.compile(rb"\r?\n(?=[ \t])")
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
_MAILDIR_INFO = re.compile(r"[:!]2,([A-Za-z]*)$")
# Messages stored and committed together: an interrupted import keeps every chunk it committed.
IMPORT_CHUNK = 200
_HINT_HEADERS = (b"x-gmail-labels", b"status", b"x-status", b"x-mozilla-status")


@dataclass(frozen=True)
class ImportedMessage:
    """One message to import: its exact bytes and the receipt hints for how it was filed."""

    raw: bytes
    hints: dict[str, Any]
    origin: str
    error: str = ""


@dataclass
class Folder:
    """What a message's folder says: a system role or a user label (or neither)."""

    role: str = ""
    label: str = ""

    @classmethod
    def named(cls, name: str) -> "Folder":
        """A folder the user made: a system folder if its name says so, else a label."""
        role = _role_named(name)
        return cls(role=role) if role else cls(label=name)


class MailSource:
    """A file or folder of mail. ``count()`` before iterating lets a progress bar show a total."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def count(self) -> int:
        raise NotImplementedError

    def messages(self) -> Iterator[ImportedMessage]:
        raise NotImplementedError


class MboxSource(MailSource):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._box = None
        # Only a system folder's name counts: a file name is often no folder name at all.
        self._folder = Folder(role=_role_named(path.stem))

    def _open(self):  # noqa: ANN202 - the standard library's mbox
        if self._box is None:
            self._box = stdlib_mailbox().mbox(self.path, create=False)
        return self._box

    def count(self) -> int:
        return len(self._open())  # scans the file once; iterating reuses the table of contents

    def messages(self) -> Iterator[ImportedMessage]:
        box = self._open()
        try:
            for key in box.iterkeys():
                raw = box.get_bytes(key)
                yield ImportedMessage(raw, hints_for(raw=raw, folder=self._folder), f"{self.path}#{key}")
        finally:
            box.close()
            self._box = None


class MaildirSource(MailSource):
    """A Maildir, with its Maildir++ sub-folders (``.Name`` directories holding cur/new)."""

    def _folders(self) -> list[tuple[Path, Folder]]:
        folders = [(self.path, Folder())]
        for entry in sorted(self.path.iterdir()):
            if entry.name.startswith(".") and _is_maildir(entry):
                name = entry.name[1:].replace(".", "/")
                folders.append((entry, Folder.named(name)))
        return folders

    def _files(self) -> Iterator[tuple[Path, str, Folder]]:
        for folder_path, folder in self._folders():
            for sub in ("new", "cur"):
                directory = folder_path / sub
                if directory.is_dir():
                    for name in sorted(os.listdir(directory)):
                        if not name.startswith("."):
                            yield directory / name, sub, folder

    def count(self) -> int:
        return sum(1 for _ in self._files())

    def messages(self) -> Iterator[ImportedMessage]:
        for path, sub, folder in self._files():
            try:
                raw = path.read_bytes()
            except OSError as error:  # one unreadable file: skip it, keep the rest of the folder
                yield ImportedMessage(b"", {}, str(path), error=str(error))
                continue
            flags = _maildir_flags(path.name) if sub == "cur" else ""
            yield ImportedMessage(raw, hints_for(raw=raw, folder=folder, maildir_flags=flags), str(path))


class EmlSource(MailSource):
    def count(self) -> int:
        return 1

    def messages(self) -> Iterator[ImportedMessage]:
        raw = self.path.read_bytes()
        yield ImportedMessage(raw, hints_for(raw=raw, folder=Folder()), str(self.path))


def mail_sources_find(paths: Iterable[Path]) -> tuple[list[MailSource], list[Path]]:
    """The mail sources under ``paths`` (files, Maildirs, folders of them), and the files skipped
    as not mail. A path that does not exist raises ``FileNotFoundError``."""
    sources: list[MailSource] = []
    skipped: list[Path] = []
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(path)
        if path.is_dir():
            _walk(path, sources, skipped)
        else:
            _add_file(path, sources, skipped)
    return sources, skipped


def _walk(directory: Path, sources: list[MailSource], skipped: list[Path]) -> None:
    if _is_maildir(directory):
        sources.append(MaildirSource(directory))
        return
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            _walk(entry, sources, skipped)
        else:
            _add_file(entry, sources, skipped)


def _add_file(path: Path, sources: list[MailSource], skipped: list[Path]) -> None:
    with path.open("rb") as handle:
        start = handle.read(1024)
    if start.startswith(b"From "):
        sources.append(MboxSource(path))
    elif path.suffix.lower() == ".eml" or _HEADER_LINE.match(start):
        sources.append(EmlSource(path))
    else:
        skipped.append(path)


def _role_named(name: str) -> str:
    return FOLDER_ROLES.get(" ".join(name.lower().split()), "")


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def _maildir_flags(filename: str) -> str:
    match = _MAILDIR_INFO.search(filename)
    return match.group(1) if match else ""


def header_values(raw: bytes, names: Iterable[bytes] = _HINT_HEADERS) -> dict[str, str]:
    """The first value of each wanted header (lowercase names), unfolded, without parsing the
    whole message: the import reads only these from each message."""
    wanted = set(names)
    end = _HEADER_END.search(raw)
    block = _FOLDED_LINE.sub(b"", raw[: end.start()] if end else raw)
    found: dict[str, str] = {}
    for line in block.split(b"\n"):
        name, colon, value = line.partition(b":")
        key = name.strip().lower()
        if colon and key in wanted and key.decode() not in found:
            found[key.decode()] = value.strip().decode("utf-8", "replace")
    return found


def gmail_labels_parse(value: str) -> list[str]:
    """The labels in an ``X-Gmail-Labels`` value: RFC 2047 words decoded, comma-separated, with
    double quotes around labels that contain commas."""
    # An unknown charset or a broken encoded word: keep the text as it came.
    with contextlib.suppress(HeaderParseError, LookupError, UnicodeError, ValueError):
        value = str(make_header(decode_header(value)))
    labels, current, quoted, escaped = [], [], False, False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            labels.append("".join(current))
            current = []
        else:
            current.append(char)
    labels.append("".join(current))
    return [" ".join(label.split()) for label in labels if label.strip()]


def gmail_hints(labels: list[str]) -> dict[str, Any]:
    """Receipt hints from Gmail labels: system roles, user labels, read and starred."""
    lowered = {label.lower() for label in labels}
    roles = [FOLDER_ROLES[name] for name in ("inbox", "sent", "drafts", "spam", "trash") if name in lowered]
    users = [
        label
        for label in labels
        if label.lower() not in GMAIL_MARKERS
        and label.lower() not in FOLDER_ROLES
        and not label.lower().startswith(GMAIL_MARKER_PREFIXES)
    ]
    # An archived message has no system label: it lives in All mail only.
    return {
        "label_roles": roles,
        "labels": users,
        "is_read": "unread" not in lowered,
        "is_starred": "starred" in lowered,
    }


def hints_for(*, raw: bytes, folder: Folder, maildir_flags: str | None = None) -> dict[str, Any]:
    """Receipt hints for one message: Gmail labels when present, else its folder and flags."""
    headers = header_values(raw)
    if "x-gmail-labels" in headers:
        return gmail_hints(gmail_labels_parse(headers["x-gmail-labels"]))
    if maildir_flags is not None:
        is_read, is_starred = "S" in maildir_flags, "F" in maildir_flags
        extra_role = Label.Role.TRASH if "T" in maildir_flags else Label.Role.DRAFTS if "D" in maildir_flags else ""
    else:
        is_read, is_starred = _mbox_flags(headers)
        extra_role = ""
    hints: dict[str, Any] = {"is_read": is_read, "is_starred": is_starred}
    role = extra_role or folder.role
    if role:
        hints["label_roles"] = [role]
    if folder.label:
        # A user's own folder: the label alone, like an archived Gmail conversation.
        hints.setdefault("label_roles", [])
        hints["labels"] = [folder.label]
    return hints


def _mbox_flags(headers: dict[str, str]) -> tuple[bool, bool]:
    """(read, starred) from mutt/Pine ``Status``/``X-Status`` or Thunderbird's ``X-Mozilla-Status``."""
    if "x-mozilla-status" in headers:
        try:
            bits = int(headers["x-mozilla-status"], 16)
        except ValueError:
            bits = 0
        return bool(bits & 0x0001), bool(bits & 0x0004)
    return "R" in headers.get("status", ""), "F" in headers.get("x-status", "")


@dataclass
class ImportResult:
    imported: int = 0
    duplicates: int = 0
    empty: int = 0
    unreadable: list[str] = field(default_factory=list)


def mail_import(
    *,
    mailbox: Mailbox,
    sources: Iterable[MailSource],
    extra_labels: tuple[str, ...] = (),
    progress: Callable[[], None] = lambda: None,
) -> ImportResult:
    """Hand every message of ``sources`` to ``inbound_accept`` for ``mailbox``; safe to re-run.

    Each message is its own arrival; they are committed in chunks of ``IMPORT_CHUNK``, so an
    interrupted import keeps the chunks it committed and a re-run adds only the rest.
    ``progress`` is called once a message.
    Unreadable files are skipped and listed; a database or storage failure propagates.
    """
    result = ImportResult()
    correlation_id = f"import-{uuid.uuid4().hex}"  # one per run: its receipts and parse tasks share it
    pending: list[Arrival] = []
    for source in sources:
        messages = source.messages()
        while True:
            try:
                message = next(messages)
            except StopIteration:
                break
            except OSError as error:  # reading the source, not storing: the rest of it is lost
                result.unreadable.append(f"{source.path}: {error}")
                break
            arrival = _arrival(mailbox, message, extra_labels, result, correlation_id)
            if arrival is not None:
                pending.append(arrival)
            if len(pending) >= IMPORT_CHUNK:
                _store(pending, result, progress)
            elif arrival is None:
                progress()
    _store(pending, result, progress)
    return result


def _arrival(
    mailbox: Mailbox, message: ImportedMessage, extra_labels: tuple[str, ...], result: ImportResult, correlation_id: str
) -> Arrival | None:
    if message.error:
        result.unreadable.append(f"{message.origin}: {message.error}")
        return None
    if not message.raw.strip():
        result.empty += 1
        return None
    hints = message.hints
    if extra_labels:
        hints = {**hints, "labels": [*hints.get("labels", []), *extra_labels]}
    return Arrival(
        source=InboundReceipt.Source.IMPORT,
        raw=message.raw,
        event_id=f"{mailbox.id}:{hashlib.sha256(message.raw).hexdigest()}",
        envelope_recipients=(mailbox.address,),
        metadata=hints,
        correlation_id=correlation_id,
    )


def _store(pending: list[Arrival], result: ImportResult, progress: Callable[[], None]) -> None:
    """Commit a chunk of arrivals (their parse is queued in batches once they are committed)."""
    if not pending:
        return
    for stored in inbound_accept_many(arrivals=pending):
        if stored.created:
            result.imported += 1
        else:
            result.duplicates += 1
        progress()
    pending.clear()
