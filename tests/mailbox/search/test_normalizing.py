"""``search_text`` takes a shortcut for ASCII text; it must fold exactly as the full path does."""

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from mailbox.search.normalizing import search_text


def _full_path(text: str) -> str:
    """The ASCII shortcut must agree with normalising as for any other text: this is that, unshortened."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKD", text.replace("\x00", " "))).casefold()


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_ascii_text_folds_as_the_full_path_folds_it(text):
    assert search_text(text) == _full_path(text)


def test_other_text_still_folds_accents_case_and_splits_cjk():
    assert search_text("Café STRASSE Straße\x00東京") == "cafe strasse strasse  東  京 "
