"""Subject normalisation: the key under which replies that lost their headers can find their thread.

Reply and forward prefixes, list tags and forward wrappers are stripped; other bracketed tags
(``[PATCH v2 1/3]``, ``[TECH TOPIC]``) are part of the topic and stay, so version 2 of a patch
series or a differently tagged proposal is a different subject.
"""

import re
from dataclasses import dataclass

# Reply and forward prefixes of common clients, in several languages, with optional counters
# ("Re[2]:", "Re(2):") and ASCII or full-width colons.
_PREFIX_WORDS = r"re|fwd?|aw|wg|sv|vs|vl|antw|rif|enc|rv|odp|pd|ynt|ilt|fs|vb|tr|réf|回复|回覆|转发|轉寄|답장|ответ"
_TAG = r"\[[^\[\]]{1,60}\]"
# Tags directly before a reply prefix were added by a list or a gateway, never by the author.
_LEADER = re.compile(rf"^(?:{_TAG}\s*)*(?:{_PREFIX_WORDS})\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:\uff1a]\s*", re.IGNORECASE)
_LEADING_TAG = re.compile(rf"^({_TAG})\s*")
_FWD_SUFFIX = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)
_FWD_WRAPPER = re.compile(r"^\s*\[fwd:\s*(.*)\]\s*$", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[\W_]+")

MIN_TOPIC_CHARACTERS = 3
MAX_LOOSER_KEYS = 3
# Subjects so common that two messages sharing one say nothing about being one conversation.
GENERIC_SUBJECTS = frozenset(
    {
        "(no subject)",
        "no subject",
        "(none)",
        "none",
        "untitled",
        "hi",
        "hello",
        "hey",
        "hi there",
        "hello there",
        "good morning",
        "question",
        "questions",
        "quick question",
        "test",
        "testing",
        "test message",
        "update",
        "updates",
        "info",
        "information",
        "thanks",
        "thank you",
        "fyi",
        "help",
        "urgent",
        "important",
        "reminder",
        "follow up",
        "follow-up",
        "followup",
        "request",
        "meeting",
        "document",
        "documents",
        "photo",
        "photos",
        "invoice",
        "your order",
    }
)


@dataclass(frozen=True)
class SubjectKey:
    normalized: str
    is_reply: bool  # a reply or forward prefix, "(fwd)" or "[Fwd: …]" was stripped

    @property
    def is_generic(self) -> bool:
        """Too common or too short to join two messages by subject alone."""
        return _is_generic(self.normalized)

    @property
    def keys(self) -> list[str]:
        """The key, then the key without each further leading tag: a reply may carry tags its thread's
        subject lacks (another list's tag on a cross-post, a gateway's ``[EXTERNAL]``). Most specific first."""
        keys, current = [self.normalized], self.normalized
        while len(keys) <= MAX_LOOSER_KEYS and (tag := _LEADING_TAG.match(current)):
            current = current[tag.end() :]
            if _is_generic(current):
                break
            keys.append(current)
        return keys


def _is_generic(normalized: str) -> bool:
    return len(_NOT_WORD.sub("", normalized)) < MIN_TOPIC_CHARACTERS or normalized in GENERIC_SUBJECTS


def subject_analyse(subject: str, *, list_id: str = "") -> SubjectKey:
    """Strip prefixes, wrappers and the list's tag repeatedly; fold case and white space.

    ``list_id`` (RFC 2919, e.g. ``ksummit-discuss.lists.example.org``) names the list whose
    ``[ksummit-discuss]`` tag is stripped wherever it stands in the subject's leader.
    """
    current = _SPACE.sub(" ", subject or "").strip()
    list_name = _tag_key(list_id.split(".", 1)[0]) if list_id else ""
    is_reply = False
    while True:
        previous = current
        current, stripped = _strip_reply_marks(current)
        is_reply = is_reply or stripped
        tag = _LEADING_TAG.match(current)
        if tag and list_name and _tag_key(tag.group(1)[1:-1]) == list_name:
            current = current[tag.end() :]
        if current == previous:
            return SubjectKey(current.strip().casefold()[:255], is_reply)


def normalize_subject(subject: str, *, list_id: str = "") -> str:
    return subject_analyse(subject, list_id=list_id).normalized


def _strip_reply_marks(subject: str) -> tuple[str, bool]:
    stripped = _FWD_SUFFIX.sub("", subject)
    stripped = _FWD_WRAPPER.sub(r"\1", stripped)
    stripped = _LEADER.sub("", stripped)
    return stripped, stripped != subject


def _tag_key(value: str) -> str:
    return _NOT_WORD.sub("", value).casefold()
