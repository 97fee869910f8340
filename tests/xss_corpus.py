"""Hostile material for the sanitiser and browser tests: every file of an XSS corpus folder.

The folder is ``MAILSITE_XSS_CORPUS`` when set (a payload set nobody here has seen, dropped in and
run by the same tests), else the shared corpus ``../shared/corpora/xss`` when present, else the copy
of its permissively licensed part under ``tests/fixtures/xss`` (see its SOURCE.txt).

Nothing in the folder is left out, and nothing is chosen by name: each file is used in every way
its content allows (``corpus_load``):
- text: the whole file as one message body; a ``.txt`` file is also a list, one payload a line;
  JSON also gives each string in it that could be markup, ``%placeholder%``s filled in from any
  JSON file of the same folder that maps names to strings (html5sec's ``payloads.json``);
- a gzip file (``.svgz``): the same, for the bytes inside;
- an image (PNG, JPEG, GIF, WebP): an inline ``cid:`` image, plus each markup-like string hidden
  in its metadata (EXIF, comments) as a payload;
- a raw message (``.eml``, or a file that reads like one): through the real ingestion pipeline;
- anything else binary: its markup-like strings as payloads, its bytes as one body;
- and every file, whatever it is, as an attachment.
"""

import gzip
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT, SHARED_CORPORA

CORPUS_ENV = "MAILSITE_XSS_CORPUS"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "xss"
SHARED = SHARED_CORPORA / "xss"
IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
GZIP_MAGIC = b"\x1f\x8b"
# A run of printable characters in binary data that could be markup or script once decoded.
HIDDEN_STRING = re.compile(rb"[\x20-\x7e]{6,}")
MARKUP_LIKE = re.compile(r"[<>:&=(`]")
# Headers a message starts with, or has on a line of its own before its body.
MESSAGE_HEADER = re.compile(rb"^(content-type|content-transfer-encoding|mime-version|from|received):", re.I | re.M)
PLACEHOLDER = re.compile(r"%([a-z0-9_]+)%")


@dataclass
class Corpus:
    root: Path
    payloads: list[str] = field(default_factory=list)  # fragments: many go into one body
    documents: dict[str, str] = field(default_factory=dict)  # file name -> one whole body
    images: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # name -> (bytes, type)
    messages: dict[str, bytes] = field(default_factory=dict)  # name -> raw message
    attachments: dict[str, bytes] = field(default_factory=dict)  # every file, by name
    uses: dict[str, set[str]] = field(default_factory=dict)  # file name -> how it is used

    def bodies(self) -> list[str]:
        """Everything that goes into a message body: each payload and each whole document."""
        return self.payloads + list(self.documents.values())

    def _use(self, name: str, how: str) -> None:
        self.uses.setdefault(name, set()).add(how)

    def _payloads(self, name: str, payloads: list[str]) -> None:
        seen = set(self.payloads)
        for payload in payloads:
            if payload.strip() and payload not in seen:
                seen.add(payload)
                self.payloads.append(payload)
        self._use(name, "payloads")


def corpus_root() -> Path:
    """The folder the tests read: the environment's, else the shared corpus, else the fixtures."""
    chosen = os.environ.get(CORPUS_ENV)
    if chosen:
        root = Path(chosen).expanduser().resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"{CORPUS_ENV}={chosen} is not a folder")
        return root
    return SHARED if SHARED.is_dir() else FIXTURES


def corpus_load(root: Path | None = None) -> Corpus:
    """Every file under ``root`` (``corpus_root()`` by default), each used every way it can be."""
    corpus = Corpus(root=root or corpus_root())
    files = sorted(p for p in corpus.root.rglob("*") if p.is_file())
    placeholders = _placeholder_values(corpus.root, files)
    for path in files:
        _add_file(corpus, path.relative_to(corpus.root).as_posix(), path.read_bytes(), placeholders)
    return corpus


def _add_file(corpus: Corpus, name: str, data: bytes, placeholders: dict[Path, dict[str, str]]) -> None:
    corpus.attachments[name] = data
    corpus._use(name, "attachment")
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(data)
    kind = image_type(data)
    if kind:
        corpus.images[name] = (data, kind)
        corpus._use(name, "inline image")
        corpus._payloads(name, _hidden_strings(data))
        return
    if _reads_like_a_message(name, data):
        corpus.messages[name] = data
        corpus._use(name, "message")
    if b"\x00" in data:
        corpus._payloads(name, _hidden_strings(data))
        corpus.documents[name] = data.decode("latin-1")
        corpus._use(name, "document")
        return
    text = data.decode("utf-8", errors="replace")
    corpus.documents[name] = text
    corpus._use(name, "document")
    if name.lower().endswith(".txt"):
        corpus._payloads(name, text.splitlines())
    parsed = _json(text)
    if parsed is not None:
        fill = placeholders.get(Path(name).parent, {})
        corpus._payloads(name, [_fill(s, fill) for s in _strings(parsed) if MARKUP_LIKE.search(s)])


def image_type(data: bytes) -> str | None:
    """The type of a PNG, JPEG, GIF or WebP image by its first bytes; None for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in IMAGE_MAGIC.items() if data.startswith(magic)), None)


def _gunzip(data: bytes, limit: int = 10_000_000) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as inner:
            return inner.read(limit)
    except (OSError, EOFError):
        return data  # not gzip after all: used as the bytes it is


def _hidden_strings(data: bytes) -> list[str]:
    found = (m.group().decode("ascii") for m in HIDDEN_STRING.finditer(data))
    return [s for s in found if MARKUP_LIKE.search(s)]


def _reads_like_a_message(name: str, data: bytes) -> bool:
    if name.lower().endswith((".eml", ".msg", ".mht", ".mhtml")):
        return True
    head = data[:4096]
    return b"\x00" not in head and len(MESSAGE_HEADER.findall(head)) >= 2


def _json(text: str) -> Any:
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _fill(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _placeholder_values(root: Path, files: list[Path]) -> dict[Path, dict[str, str]]:
    """Per folder (relative to the corpus), the name -> string maps among its JSON files."""
    maps: dict[Path, dict[str, str]] = {}
    for path in files:
        if path.suffix.lower() != ".json":
            continue
        parsed = _json(path.read_text(encoding="utf-8", errors="replace"))
        if isinstance(parsed, dict) and parsed and all(isinstance(v, str) for v in parsed.values()):
            maps.setdefault(path.parent.relative_to(root), {}).update(parsed)
    return maps
