"""Quoted text: folded in the body document, left out of the list's snippet, for each mail
client's way of quoting (one fixture per client under tests/fixtures/quotes), and never so much
that nothing shows."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailbox.parsing import parse_message
from mailbox.parsing.results import ParsedMessage
from mailbox.rendering.body import html_render, render_body
from mailbox.rendering.text import QUOTE_SUMMARY
from mailsite.stdlib_mailbox import stdlib_mailbox
from tests.conftest import SHARED_CORPORA
from tests.mailbox.test_sanitiser import policy

QUOTES = Path(__file__).resolve().parent.parent / "fixtures" / "quotes"
FOLDED = '<details class="quoted">'
# (fixture, the reply's own text, text only the quote holds)
CLIENTS = [
    ("gmail.html", "Sounds good, see you then.", "wrote:"),
    ("outlook_web.html", "Thursday works for me.", "Sent:"),
    ("outlook_desktop.html", "Thursday works for me.", "Sent:"),
    ("yahoo.html", "Thursday works for me.", "wrote:"),
    ("apple_mail.html", "Thursday works for me.", "wrote:"),
    ("thunderbird.html", "Thursday works for me.", "schrieb Carol Jones:"),
    ("gmail_wrapped.txt", "Sounds good, see you then.", "wrote:"),
    ("gmail_de.txt", "Passt mir gut.", "schrieb Carol Jones"),
    ("gmail_fr.txt", "Jeudi me va.", "a écrit"),
    ("gmail_es.txt", "El jueves me va bien.", "escribió:"),
    ("outlook.txt", "Thursday works for me.", "Sent:"),
    ("outlook_original_message.txt", "Thursday works for me.", "Original Message"),
]


def _render(name: str) -> str:
    source = (QUOTES / name).read_text()
    html = source if name.endswith(".html") else ""
    return render_body(text=source if not html else "", html=html, policy=policy()).html


def _parsed(name: str) -> ParsedMessage:
    source = (QUOTES / name).read_text()
    html = source if name.endswith(".html") else ""
    return ParsedMessage(
        message_id="m@x", in_reply_to="", references=[], subject="Re: Lunch", date=datetime(2026, 11, 2, tzinfo=UTC),
        list_id="", size=len(source), addresses={}, text=source if not html else "", html=html,
    )  # fmt: skip


@pytest.mark.parametrize(("name", "reply", "quoted"), CLIENTS)
def test_each_clients_quote_folds_with_its_attribution_and_the_reply_shows(name, reply, quoted):
    out = _render(name)

    assert out.count(FOLDED) == 1
    fold = out.index(FOLDED)
    assert reply in out[:fold]
    assert quoted in out[fold:]
    assert (
        "Thursday?" in out[fold:] or "jueves?" in out[fold:] or "jeudi ?" in out[fold:] or "Donnerstag?" in out[fold:]
    )
    assert f"<summary>{QUOTE_SUMMARY}</summary>" in out  # expandable
    assert html_render(out, policy=policy()) == out


@pytest.mark.parametrize(("name", "reply", "quoted"), CLIENTS)
def test_the_snippet_is_the_reply_without_the_quote(name, reply, quoted):
    assert _parsed(name).snippet == reply


def test_a_message_that_is_only_a_quote_is_shown_whole():
    out = _render("only_a_quote.txt")

    assert FOLDED not in out
    assert "Lunch on Thursday?" in out
    assert _parsed("only_a_quote.txt").snippet.startswith("On Mon, Nov 2, 2026")


@pytest.mark.parametrize(
    "html",
    [
        "<blockquote>all of it</blockquote>",
        '<div id="divRplyFwdMsg"><b>From:</b> a<br><b>Sent:</b> b</div><p>original</p>',
        "<hr><p><b>From:</b> Carol<br><b>Sent:</b> Monday</p><p>original</p>",
    ],
)
def test_html_that_is_only_a_quote_is_shown_whole(html):
    assert FOLDED not in html_render(html, policy=policy())


@pytest.mark.parametrize(
    "text",
    [
        "On Monday we met.\nIt went well.\n> not a reply, a stray quote",  # no attribution line: only > folds
        "Notes\n\n____________________________\nAgenda: none\n",  # a rule without Outlook's header block
        "Tell Bob: On the other hand, he wrote:\nthat it works.",  # not followed by quoted lines
    ],
)
def test_text_that_merely_looks_like_a_quote_is_not_folded_beyond_its_quoted_lines(text):
    out = render_body(text=text, html="", policy=policy()).html
    folded = out[out.index(FOLDED) :] if FOLDED in out else ""
    assert "On Monday we met." not in folded
    assert "Agenda" not in folded
    assert "that it works." not in folded


def _list_messages() -> list:
    archive = SHARED_CORPORA / "mailing-lists" / "ksummit-discuss.lists.linuxfoundation.org.mbox"
    if not archive.exists():
        pytest.skip("the shared mailing-list corpus is not here")
    return [message.as_bytes() for message in stdlib_mailbox().mbox(archive)]


def test_real_list_replies_snippets_skip_the_quote_and_bodies_keep_their_text():
    replies = 0
    for raw in _list_messages():
        parsed = parse_message(raw, received_at=datetime(2026, 11, 2, tzinfo=UTC))
        lines = parsed.text.splitlines()
        out = render_body(text=parsed.text, html="", policy=policy()).html
        shown = re.sub(r'<details class="quoted">.*?</details>', "", out, flags=re.DOTALL)
        assert re.sub(r"<[^>]*>", "", shown).strip() or not parsed.text.strip()  # never folded whole
        if any(line.startswith(">") for line in lines) and any(line.strip() and line[0] != ">" for line in lines):
            replies += 1
            assert not parsed.snippet.startswith(">"), parsed.snippet
            assert " wrote: >" not in parsed.snippet, parsed.snippet
    assert replies > 100
