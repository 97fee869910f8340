import pytest

from threads.subjects import normalize_subject, subject_analyse

LIST = "ksummit-discuss.lists.linuxfoundation.org"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hello", "hello"),
        ("Re: Hello", "hello"),
        ("RE: re: Fwd: Hello", "hello"),
        ("Re[2]: Hello", "hello"),
        ("Re(3): Hello", "hello"),
        ("RE : Hello", "hello"),
        ("AW: WG: Hello", "hello"),
        ("SV: VS: VL: Antw: Hello", "hello"),
        ("RIF: ENC: RV: ODP: PD: YNT: ILT: FS: VB: TR: Hello", "hello"),
        ("Réf : Hello", "hello"),
        ("回复\uff1aHello", "hello"),  # full-width colon
        ("回覆: 转发: 轉寄: 답장: Hello", "hello"),
        ("Ответ: Hello", "hello"),
        ("Hello (fwd)", "hello"),
        ("[Fwd: Hello]", "hello"),
        ("Re: [Fwd: Hello]", "hello"),
        ("  Hello\t world ", "hello world"),
        ("", ""),
        ("Re:", ""),
        ("Regarding the plan", "regarding the plan"),
        ("Research: results", "research: results"),
        # A tag before a reply prefix was added by a list or gateway; other tags name the topic.
        ("[EXTERNAL] Re: Hello", "hello"),
        ("[PATCH v2 1/3] mm: fix", "[patch v2 1/3] mm: fix"),
        ("Re: [PATCH v2 1/3] mm: fix", "[patch v2 1/3] mm: fix"),
    ],
)
def test_prefixes_tags_and_wrappers_are_stripped(subject, expected):
    assert normalize_subject(subject) == expected


@pytest.mark.parametrize(
    "subject",
    [
        "[Ksummit-discuss] [MAINTAINERS SUMMIT] Patch version",
        "Re: [Ksummit-discuss] [MAINTAINERS SUMMIT] Patch version",
        "[Ksummit-discuss] Re: [MAINTAINERS SUMMIT] Patch  version",
        "[ksummit-discuss] RE: [MAINTAINERS SUMMIT] patch version",
        "Re: Re: [MAINTAINERS SUMMIT] Patch version",
        "[KSUMMIT DISCUSS] [MAINTAINERS SUMMIT] Patch version",
    ],
)
def test_the_lists_own_tag_is_stripped_wherever_it_stands(subject):
    assert normalize_subject(subject, list_id=LIST) == "[maintainers summit] patch version"


def test_another_lists_tag_is_kept():
    assert normalize_subject("[other-list] Hello", list_id=LIST) == "[other-list] hello"


@pytest.mark.parametrize(
    ("subject", "is_reply"),
    [("Re: Hello", True), ("Fwd: Hello", True), ("Hello (fwd)", True), ("[list] Hello", False), ("Hello", False)],
)
def test_replies_and_forwards_are_recognised(subject, is_reply):
    assert subject_analyse(subject).is_reply is is_reply


@pytest.mark.parametrize(
    ("subject", "generic"),
    [
        ("(no subject)", True),
        ("Re: Hi", True),
        ("QUESTION", True),
        ("ok", True),
        ("??!", True),
        ("", True),
        ("Budget 2027", False),
        ("Question about the budget", False),
    ],
)
def test_generic_subjects_are_recognised(subject, generic):
    assert subject_analyse(subject).is_generic is generic


def test_normalised_subject_fits_its_column():
    assert len(normalize_subject("x" * 1000)) == 255


def test_looser_keys_drop_leading_tags_one_at_a_time_but_never_down_to_a_generic_subject():
    assert subject_analyse("Re: [Tech-board] [PATCH] Style: terms").keys == [
        "[tech-board] [patch] style: terms",
        "[patch] style: terms",
        "style: terms",
    ]
    assert subject_analyse("[EXTERNAL] hi").keys == ["[external] hi"]
