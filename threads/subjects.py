"""Subject normalisation: the key under which replies that lost their headers can find their thread."""

import re

# Reply and forward prefixes of common clients, in several languages, with optional counters
# ("Re[2]:", "Re(2):") and ASCII or full-width colons.
_PREFIX = re.compile(
    r"^\s*(?:re|fwd?|fw|aw|wg|sv|vs|vl|antw|rif|enc|rv|odp|pd|ynt|ilt|fs|vb|tr|réf|回复|回覆|转发|轉寄|답장|ответ)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*",
    re.IGNORECASE,
)
_LIST_TAG = re.compile(r"^\s*\[[^\]]{1,60}\]\s*")
_FWD_SUFFIX = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)
_FWD_WRAPPER = re.compile(r"^\s*\[fwd:\s*(.*)\]\s*$", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def normalize_subject(subject: str) -> str:
    """Strip list tags, reply/forward prefixes and wrappers repeatedly; fold case and white space."""
    current = _SPACE.sub(" ", subject or "").strip()
    while True:
        previous = current
        current = _FWD_SUFFIX.sub("", current)
        current = _FWD_WRAPPER.sub(r"\1", current)
        current = _LIST_TAG.sub("", current)
        current = _PREFIX.sub("", current)
        if current == previous:
            return current.strip().casefold()[:255]
