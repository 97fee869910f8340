"""Text normalisation shared by the indexer and the query parser, so both sides agree on lexemes.

The search configuration is PostgreSQL's ``simple`` (lowercase, no stemming, no stop words):
mail mixes languages within one mailbox, often within one message, and a stemmer for the wrong
language mangles words, while ``simple`` finds every word as written, in any script. Two things
``simple`` lacks are done here in Python, identically for documents and queries:

- accents: Latin, Greek and Cyrillic diacritics are dropped (``café`` matches ``cafe``), without
  the ``unaccent`` extension and its immutability caveats; marks of other scripts (e.g. Indic vowel
  signs) are kept, as they change the word;
- scripts written without spaces (Chinese, Japanese, Korean): each character becomes its own
  token, and a query word becomes a phrase of characters, so ``東京`` finds ``東京都`` (substring
  match on character sequences, the usual unigram approach).
"""

import html
import re
import unicodedata

# Bodies beyond this many characters are not indexed: a tsvector is capped at 1 MB, and the first
# 100k characters of a message hold what people search for.
BODY_INDEX_LIMIT = 100_000

_COMBINING_DIACRITICS = re.compile("[\u0300-\u036f]")
_CJK = re.compile(
    "([\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002fa1f])"
)
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^<>]*>")


def search_text(text: str) -> str:
    """``text`` as the indexer and the query both see it: NUL-free, accent- and case-folded
    (``ß`` → ``ss``), CJK split."""
    text = text.replace("\x00", " ")
    if text.isascii():  # most mail: no accents, no CJK, and ASCII folds as it lowercases
        return text.lower()
    folded = _COMBINING_DIACRITICS.sub("", unicodedata.normalize("NFKD", text))
    return _CJK.sub(r" \1 ", unicodedata.normalize("NFC", folded).casefold())


def html_visible_text(markup: str) -> str:
    """Visible text of an HTML body, for mail that has no text part: scripts, styles and tags dropped."""
    return html.unescape(_TAG.sub(" ", _SCRIPT_OR_STYLE.sub(" ", markup)))
