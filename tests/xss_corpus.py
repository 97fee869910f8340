"""Hostile HTML payloads for the sanitiser and browser tests.

The MIT-licensed PayloadsAllTheThings lists are copied under tests/fixtures/xss/ (see its
SOURCE.txt); the MPL-2.0 html5sec (H5SC) vectors are read from the shared corpus when present.
"""

import json
import re

from tests.conftest import REPO_ROOT, SHARED_CORPORA

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "xss"
H5SC = SHARED_CORPORA / "xss" / "h5sc"


def bundled_payloads() -> list[str]:
    """Every distinct line of the bundled payload lists."""
    seen: dict[str, None] = {}
    for path in sorted((FIXTURES / "payloadsallthethings").glob("*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                seen.setdefault(line, None)
    for path in sorted((FIXTURES / "payloadsallthethings").glob("*.svg")):
        seen.setdefault(path.read_text(encoding="utf-8", errors="replace"), None)
    return list(seen)


def h5sc_payloads() -> list[str]:
    """The html5sec vectors with their placeholders filled in; empty when the corpus is absent."""
    if not (H5SC / "items.json").exists():
        return []
    values = json.loads((H5SC / "payloads.json").read_text(encoding="utf-8"))
    items = json.loads((H5SC / "items.json").read_text(encoding="utf-8"))
    return [re.sub(r"%([a-z0-9_]+)%", lambda m: values.get(m.group(1), m.group(0)), item["data"]) for item in items]


def all_payloads() -> list[str]:
    return bundled_payloads() + h5sc_payloads()
