"""Real mail, written by others, through the whole inbound pipeline.

Every file goes in through ``inbound_accept`` (as an import for a local mailbox) and is processed by
``receipt_process``, the body of the parse task: no unhandled exception, each receipt ends parsed or
quarantined, and its raw blob is byte-identical to the input. Files that are no message at all (the
PNG, WAV, DKIM canonicalisation outputs and JSON oracles beside the messages) belong to the test:
they must end quarantined, not failed.

The permissively licensed edge cases copied into ``tests/fixtures/mail`` always run; the full
corpora run when ``../shared/corpora`` is beside the clone (CI has it).

Where stalwart-mail-parser ships an expected parse, subject, addresses (From, To, Cc, Reply-To,
Sender; a role the expected parse lacks must be empty in ours too) and attachment names are compared.
Principled differences, each pinned below in ``STALWART_DIFFERENCES``:
- 8-bit bytes that are not UTF-8: stalwart shows U+FFFD, we read windows-1252 (Frösche, Müller).
- an address without a domain (``<moderator>``) is not stored: it cannot be written to or matched.
- attachment names keep only the last path component: ``/u/nsb/writing/rfcs/RFC-MIME.ps`` → ``RFC-MIME.ps``,
  and ``"C:\\TEMP\\nsmailEG.png"`` → ``nsmailEG.png`` (stalwart reads the backslashes as escapes:
  ``C:TEMPnsmailEG.png``).
- a ``Content-Disposition: ;`` that names a file still gives the attachment its name.
- thirdparty/015: its three message/rfc822 attachments are all found (stalwart stops at the first,
  whose inner boundary has a trailing space).
"""

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from delivery.models import InboundReceipt
from delivery.selectors import blob_read
from mailbox.models import Message
from mailbox.parsing import parse_message
from mailbox.services.ingest import inbound_accept
from mailbox.services.receiving import receipt_process
from tests.conftest import REPO_ROOT, SHARED_CORPORA

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "mail"
RECIPIENT = "alice@example.test"
NOT_INPUT = {"SOURCE.txt", ".missing", ".gitattributes", "README.md"}
SHARED_FOLDERS = [
    "edge-cases/flanker",
    "edge-cases/stalwart-mail-parser",
    "edge-cases/php-mime-mail-parser",
    "edge-cases/enmime",
    "edge-cases/cpython-test_email",
    "edge-cases/django-mailbox",
    "spamassassin/easy_ham",
    "spamassassin/spam",
]
BATCH = 250
# Stalwart's header names, which are also our address roles.
ADDRESS_ROLES = ("from", "to", "cc", "reply_to", "sender")
FINAL = {InboundReceipt.Status.PARSED, InboundReceipt.Status.QUARANTINED}

# (file, field) → what we store instead of stalwart's value; the module docstring says why.
_FROESCHE = "Die Hasen und die Frösche (Microsoft Outlook 00)"
_JUERGEN = [("Jürgen Schmürgen", "schmuergen@example.com")]
STALWART_DIFFERENCES = {
    ("legacy/010.eml", "subject"): "Die Hasen und die Frösche",
    ("legacy/010.eml", "to"): [("Heinz Müller", "mueller@example.com")],
    ("legacy/017.eml", "to"): [("Jürgen Schmürgen", "jschmuergen@example.com")],
    ("legacy/020.eml", "subject"): _FROESCHE,
    ("legacy/020.eml", "to"): _JUERGEN,
    ("legacy/022.eml", "subject"): _FROESCHE,
    ("legacy/022.eml", "to"): _JUERGEN,
    ("legacy/027.eml", "subject"): _FROESCHE,
    ("legacy/027.eml", "to"): _JUERGEN,
    ("legacy/052.eml", "subject"): _FROESCHE,
    ("legacy/052.eml", "to"): [("Heinz Müller", "mueller@example.com")],
    ("legacy/016.eml", "attachments"): ["HasenundFrösche.txt", "blueball.png"],
    ("legacy/023.eml", "attachments"): ["HasenundFrösche.txt", "blueball.png", "farmerandstork.txt"],
    ("legacy/026.eml", "attachments"): ["HasenundFrösche.txt", "farmerandstork.txt"],
    ("legacy/035.eml", "attachments"): ["greenball.png", "nsmail39.png", "nsmailEG.png", "redball.png"],
    ("legacy/039.eml", "attachments"): ["blueball.png", "greenball.png", "nsmailNM.png", "nsmailV0.png"],
    ("thirdparty/007.eml", "from"): [],
    ("rfc/001.eml", "attachments"): ["BodyFormats.ps", "RFC-MIME.ps"],
    ("malformed/017.eml", "attachments"): ["image001.png"],
    ("thirdparty/015.eml", "attachments"): ["office-reply.txt", "shop-mail.txt", "training-mail.txt"],
}


def _inputs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in NOT_INPUT)


def _ingest(paths: list[Path], root: Path) -> tuple[list[str], dict[str, int]]:
    """Every file through the pipeline; returns the problems found and the outcome counts."""
    problems: list[str] = []
    counts = {InboundReceipt.Status.PARSED: 0, InboundReceipt.Status.QUARANTINED: 0}
    for path in paths:
        raw = path.read_bytes()
        name = str(path.relative_to(root))
        stored = inbound_accept(source="import", raw=raw, event_id=f"corpus:{name}", envelope_recipients=[RECIPIENT])
        try:
            receipt_process(receipt_id=stored.receipt.id)
        except Exception as error:  # noqa: BLE001 - the point: report every one, not just the first
            problems.append(f"{name}: raised {error!r}")
            continue
        receipt = InboundReceipt.objects.get(pk=stored.receipt.id)
        if receipt.status not in FINAL:
            problems.append(f"{name}: ended {receipt.status}: {receipt.last_error}")
        else:
            counts[receipt.status] += 1
        if blob_read(blob=receipt.blob) != raw:
            problems.append(f"{name}: stored bytes differ from the input")
    return problems, counts


def _check(paths: list[Path], root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    problems, counts = _ingest(paths, root)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        outcome = ", ".join(f"{count} {status}" for status, count in counts.items())
        print(f"\n  {root.name}: {len(paths)} files: {outcome} in {elapsed:.1f} s")
    assert not problems, "\n".join(problems)
    assert counts[InboundReceipt.Status.PARSED] > 0
    assert Message.objects.filter(mailbox__address=RECIPIENT).exists()


@pytest.mark.django_db
def test_copied_edge_cases_go_through_the_whole_pipeline(mailbox, capsys):
    _check(_inputs(FIXTURES), FIXTURES, capsys)


def _shared_batches() -> list:
    """One test per batch of a folder: each runs in its own transaction, which keeps PostgreSQL's
    per-transaction savepoint bookkeeping small (it slows down past a few hundred)."""
    batches = []
    for folder in SHARED_FOLDERS:
        count = len(_inputs(SHARED_CORPORA / folder)) if (SHARED_CORPORA / folder).exists() else 1
        batches += [pytest.param(folder, start, id=f"{folder}[{start}:]") for start in range(0, count, BATCH)]
    return batches


@pytest.mark.django_db
@pytest.mark.parametrize(("folder", "start"), _shared_batches())
def test_shared_corpus_goes_through_the_whole_pipeline(mailbox, folder, start, capsys):
    root = SHARED_CORPORA / folder
    if not root.exists():
        pytest.skip(f"{root} is not beside this clone (CI has ../shared/corpora)")
    _check(_inputs(root)[start : start + BATCH], root, capsys)


def _stalwart_expected(document: dict) -> dict[str, object]:
    """Subject, addresses per role and attachment names from stalwart's expected parse tree."""
    headers: dict[str, object] = {}
    for header in document["parts"][0]["headers"]:
        if isinstance(header["name"], str):
            headers.setdefault(header["name"], header["value"])
    expected: dict[str, object] = {}
    subject = headers.get("subject")
    if isinstance(subject, dict) and "Text" in subject:
        expected["subject"] = " ".join(subject["Text"].split())
    for role in ADDRESS_ROLES:
        value = headers.get(role)
        if value is None:
            expected[role] = []  # no such header: we must not invent addresses for the role
        elif isinstance(value, dict) and "Address" in value:
            expected[role] = _stalwart_addresses(value["Address"])
    expected["attachments"] = sorted(filter(None, (_part_name(document["parts"][i]) for i in document["attachments"])))
    return expected


def _stalwart_addresses(value: dict) -> list[tuple[str, str]]:
    """A stalwart address list as (name, lowercase address) pairs (no expected parse has a group)."""
    # Entries without an address (a group's name, "Whomever") are no participants.
    entries = value.get("List") or []
    return [(" ".join((e.get("name") or "").split()), e["address"].lower()) for e in entries if e.get("address")]


def _part_name(part: dict) -> str | None:
    for header in part["headers"]:
        if header["name"] in ("content_disposition", "content_type") and isinstance(header["value"], dict):
            for attribute in header["value"]["ContentType"].get("attributes") or []:
                if attribute["name"] in ("filename", "name"):
                    return attribute["value"]
    return None


def _ours(path: Path) -> dict[str, object]:
    parsed = parse_message(path.read_bytes(), received_at=datetime.now(UTC))
    return {
        "subject": parsed.subject,
        **{role: [(a.name, a.address) for a in parsed.addresses[role]] for role in ADDRESS_ROLES},
        "attachments": sorted(a.filename for a in parsed.attachments if a.filename),
    }


def _stalwart_messages() -> list:
    """.eml files with an expected parse: the shared corpus if present, else the copies."""
    shared = SHARED_CORPORA / "edge-cases" / "stalwart-mail-parser" / "resources" / "eml"
    root = shared if shared.exists() else FIXTURES / "stalwart-mail-parser"
    return [
        pytest.param(root, p, id=p.relative_to(root).as_posix())
        for p in sorted(root.rglob("*.eml"))
        if p.with_suffix(".json").exists()
    ]


@pytest.mark.parametrize(("root", "path"), _stalwart_messages())
def test_stalwart_expected_parse_matches(root, path):
    expected = _stalwart_expected(json.loads(path.with_suffix(".json").read_text()))
    ours = _ours(path)
    name = path.relative_to(root).as_posix()
    for field_name, value in expected.items():
        wanted = STALWART_DIFFERENCES.get((name, field_name), value)
        assert ours[field_name] == wanted, f"{name}: {field_name}"
