import pytest

from threads.subjects import normalize_subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hello", "hello"),
        ("Re: Hello", "hello"),
        ("RE: re: Fwd: Hello", "hello"),
        ("Re[2]: Hello", "hello"),
        ("Re(3): Hello", "hello"),
        ("AW: WG: Hello", "hello"),
        ("SV: VS: Hello", "hello"),
        ("回复\uff1aHello", "hello"),  # full-width colon
        ("Ответ: Hello", "hello"),
        ("[Ksummit-discuss] Re: [MAINTAINERS SUMMIT] Patch  version", "patch version"),
        ("Hello (fwd)", "hello"),
        ("[Fwd: Hello]", "hello"),
        ("  Hello\t world ", "hello world"),
        ("", ""),
        ("Re:", ""),
        ("Regarding the plan", "regarding the plan"),
    ],
)
def test_prefixes_tags_and_wrappers_are_stripped(subject, expected):
    assert normalize_subject(subject) == expected


def test_normalised_subject_fits_its_column():
    assert len(normalize_subject("x" * 1000)) == 255
