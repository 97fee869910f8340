"""The message HTML sanitiser: allow-listed output, remote content blocked, idempotent.

Every payload of the XSS corpora goes through the whole rendering pipeline; the output is then
parsed by an independent parser (the standard library's) and checked against the allow-list.
"""

import gzip
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbox.parsing import parse_message
from mailbox.rendering.body import html_render, render_body
from mailbox.rendering.css import MAX_STYLESHEET_CHARS, style_clean, stylesheet_clean, stylesheets_clean
from mailbox.rendering.html import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, LINK_SCHEMES, UrlPolicy
from mailbox.rendering.text import linkify, text_to_html
from tests.conftest import SHARED_CORPORA
from tests.mailbox.conversation_mail import NEWSLETTER_HTML
from tests.xss_corpus import CORPUS_ENV, FIXTURES, corpus_load

OWN = ("/m/7/cid/", "/proxy/image/?")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def policy(*, show: bool = False) -> UrlPolicy:
    return UrlPolicy(
        cid_url=lambda cid: f"/m/7/cid/{cid}/?s=sig" if cid == "logo" else None,
        proxy_url=(lambda url: "/proxy/image/?u=signed") if show else None,
        own_prefixes=OWN,
    )


# In a sanitised sheet: nothing that fetches, runs, positions or closes the element.
SHEET_PROBLEMS = r"url\(|expression|@import|\\|behavior\s*:|binding|position\s*:|-image|image-set|<"
SHEET_PROBLEMS += r"|@(?!media |font-face\{)"


class _Inspector(HTMLParser):
    """Collects every problem an allow-listed, remote-free document must not have."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.seen_anything = False
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        first, self.seen_anything = not self.seen_anything, True
        if tag == "style":
            # The one sheet the sanitiser writes: first, bare, filtered (checked in handle_data).
            self.in_style = True
            if not first or attrs:
                self.problems.append("style element not first or with attributes")
            return
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag {tag}")
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | ALLOWED_ATTRIBUTES["*"] | {"target", "rel", "class"}
        for name, value in attrs:
            value = value or ""
            if name not in allowed or name.startswith("on"):
                self.problems.append(f"attribute {tag}[{name}]")
            if name == "href" and not (value.split(":", 1)[0].lower() in LINK_SCHEMES or value.startswith(OWN)):
                self.problems.append(f"href {value!r}")
            if name == "src" and not (value.startswith(OWN) or re.match(r"data:image/(png|gif|jpeg|webp);", value)):
                self.problems.append(f"src {value!r}")
            if name == "style" and re.search(r"url\(|expression|@import|\\|behavior|position|image", value, re.I):
                self.problems.append(f"style {value!r}")
            if name == "target" and value != "_blank":
                self.problems.append(f"target {value!r}")

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    def handle_data(self, data: str) -> None:
        self.seen_anything = self.seen_anything or bool(data)
        if self.in_style and re.search(SHEET_PROBLEMS, data, re.I):
            self.problems.append(f"sheet {data[:200]!r}")


def problems(html: str) -> list[str]:
    inspector = _Inspector()
    inspector.feed(html)
    inspector.close()
    return inspector.problems


def check_payloads(payloads: list[str]) -> None:
    failures = []
    for payload in payloads:
        for show in (False, True):
            out = html_render(payload, policy=policy(show=show))
            found = problems(out)
            if html_render(out, policy=policy(show=show)) != out:
                found.append("not idempotent")
            if not show and re.search(r"(src|href)=\"(https?:)?//[^\"]*\"[^>]*>", out) and "<img" in out:
                found += [f"remote image {m}" for m in re.findall(r'<img[^>]*src="(?:https?:)?//[^"]*"', out)]
            if found:
                failures.append((payload[:120], out[:200], found))
    assert failures == [], f"{len(failures)} payloads: {failures[:5]}"


def test_every_payload_and_document_of_the_corpus_is_neutralised_and_idempotent():
    """The corpus the tests read (``MAILSITE_XSS_CORPUS``, else the shared one, else the fixtures):
    each payload, and each file as a whole body."""
    corpus = corpus_load()
    assert corpus.payloads, f"no payloads in {corpus.root}"
    check_payloads(corpus.bodies())


def test_the_bundled_copy_alone_still_has_every_payload_and_file():
    """Without the shared corpus, the fixture copy is what runs: all its lists and files."""
    corpus = corpus_load(FIXTURES)
    assert len(corpus.payloads) > 2000
    assert len([n for n in corpus.attachments if "/Files/" in n]) == 37
    check_payloads(corpus.bodies())


def test_every_file_of_the_corpus_reaches_a_body_an_image_or_the_ingestion():
    corpus = corpus_load()
    unused = sorted(name for name, uses in corpus.uses.items() if uses == {"attachment"})
    assert unused == []
    assert set(corpus.uses) == {p.relative_to(corpus.root).as_posix() for p in corpus.root.rglob("*") if p.is_file()}


def test_a_folder_named_by_the_environment_is_read_every_way_its_files_allow(tmp_path, monkeypatch):
    """An unseen payload set, dropped in: what each kind of file becomes, whatever its name."""
    (tmp_path / "deep").mkdir()
    (tmp_path / "list.txt").write_text("<svg onload=alert(1)>\n\n<img src=x onerror=alert(2)>\n")
    (tmp_path / "deep" / "page.whatever").write_text("<html><body onload=alert(3)>hi</body></html>")
    (tmp_path / "map.json").write_text('{"js": "javascript:alert(4)"}')
    (tmp_path / "items.json").write_text('[{"data": "<a href=%js%>x</a>", "lang": "en"}]')
    (tmp_path / "pic.bin").write_bytes(PNG_SIGNATURE + b"tEXtComment\x00<script>alert(5)</script>")
    (tmp_path / "zipped").write_bytes(gzip.compress(b"<svg><script>alert(6)</script></svg>"))
    (tmp_path / "raw").write_bytes(b"From: a@x\r\nContent-Type: text/html\r\n\r\n<script>alert(7)</script>")
    monkeypatch.setenv(CORPUS_ENV, str(tmp_path))

    corpus = corpus_load()

    assert corpus.root == tmp_path
    assert {"<svg onload=alert(1)>", "<img src=x onerror=alert(2)>", "<a href=javascript:alert(4)>x</a>"} <= set(
        corpus.payloads
    )
    assert "<script>alert(5)</script>" in corpus.payloads
    assert corpus.documents["deep/page.whatever"].startswith("<html>")
    assert corpus.documents["zipped"] == "<svg><script>alert(6)</script></svg>"
    assert set(corpus.images) == {"pic.bin"}
    assert set(corpus.messages) == {"raw"}
    assert set(corpus.attachments) == set(corpus.uses) == {
        "list.txt", "deep/page.whatever", "map.json", "items.json", "pic.bin", "zipped", "raw"
    }  # fmt: skip
    check_payloads(corpus.bodies())


def test_a_missing_folder_named_by_the_environment_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv(CORPUS_ENV, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError):
        corpus_load()


def test_plain_text_payloads_come_out_as_text():
    for payload in corpus_load(FIXTURES).payloads[:500]:
        out = render_body(text=payload, html="", policy=policy()).html
        assert problems(out) == []
        assert "<script" not in out
        assert "<img" not in out


HTML_BITS = [
    "<", ">", "</", "/>", "=", '"', "'", "`", "&", "&amp;", "&#", ";", ":", " ", "\n", "<!--", "-->", "<![CDATA[",
    "]]>", "<script>", "</script>", "<style>", "</style>", "<a href=", "javascript:", "cid:logo", "http://x.test/a",
    "<img src=", "<img src=//x.test/p>", "<svg>", "<math>", "<table>", "<td>", "<tr>", "</table>", "<p>", "<div>",
    "<blockquote>", "</blockquote>", '<div class="gmail_quote">', "</div>", "<details>", "<summary>", "style=",
    "color:red", "background:url(http://x)", "onerror=", "<noscript>", "<template>", "<textarea>", "<title>",
    "<iframe>", "<form>", "<select>", "<option>", "<plaintext>", "<xmp>", "<base href=http://x>", "<meta",
    "<frameset>", "<body onload=", "<font color=", "<pre>", "<li>", "<ul>",
    "a{color:red}", ".x{", "}", "@media screen{", "@import ", "url(", "\\3c/style\\3e", "<style>p{", "class=x",
    "<hr>", "From: a", "Sent: b", '<div id="divRplyFwdMsg">', '<div id="appendonsend">', '<div class="yahoo_quoted">',
    '<div class="moz-cite-prefix">', "On Mon, A wrote:", '<div style="border-top:solid red 1px">',
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(HTML_BITS), st.text(max_size=6)), max_size=30).map("".join))
def test_rendering_is_idempotent_and_allow_listed(html):
    for show in (False, True):
        out = html_render(html, policy=policy(show=show))
        assert html_render(out, policy=policy(show=show)) == out
        assert problems(out) == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_plain_text_rendering_is_idempotent(text):
    out = render_body(text=text, html="", policy=policy()).html
    assert html_render(out, policy=policy()) == out
    assert problems(out) == []


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<a href="javascript:alert(1)">x</a>', '<a target="_blank" rel="noopener noreferrer">x</a>'),
        (
            '<a href="https://e.test/" target="_self">x</a>',
            '<a href="https://e.test/" target="_blank" rel="noopener noreferrer">x</a>',
        ),
        ('<a href="/accounts/logout/">x</a>', '<a target="_blank" rel="noopener noreferrer">x</a>'),
        ('<a href="data:text/html,x">x</a>', '<a target="_blank" rel="noopener noreferrer">x</a>'),
        ("<img src=cid:logo>", '<img src="/m/7/cid/logo/?s=sig">'),
        ("<img src=cid:unknown>", "<img>"),
        ('<img src="https://t.test/p.gif" srcset="https://t.test/2x.gif 2x">', "<img>"),
        ('<img src="/t/5/">', "<img>"),  # no GET to our own app from a message
        ("<img src=data:image/png;base64,AAAA>", '<img src="data:image/png;base64,AAAA">'),
        ("<img src=data:image/svg+xml;base64,AAAA>", "<img>"),
        (
            '<table background="https://t.test/bg.png"><tr><td>x</td></tr></table>',
            "<table><tbody><tr><td>x</td></tr></tbody></table>",
        ),
        ("<style>@import url(https://t.test/a.css)</style><link rel=stylesheet href=https://t.test/b.css>x", "x"),
        ("<svg><image href=https://t.test/a.png /></svg><math><mi>y</mi></math>z", "z"),
        ("<form action=https://t.test><input name=a><button>b</button></form>", "b"),
        ("<iframe src=https://t.test></iframe><object data=x></object><embed src=x>", ""),
        ("<base href=https://t.test/><meta http-equiv=refresh content=0;url=https://t.test>", ""),
        ('<p style="color:red;position:fixed;top:0">x</p>', '<p style="color:red">x</p>'),
    ],
)
def test_examples(html, expected):
    assert html_render(html, policy=policy()) == expected


def test_remote_images_go_through_the_proxy_when_shown():
    out = html_render('<img src="https://t.test/p.gif">', policy=policy(show=True))
    assert out == '<img src="/proxy/image/?u=signed">'


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("color: red; background: url(https://t.test/x.png)", "color:red"),
        ("background-image: url('https://t.test/x.png')", ""),
        ("width: expression(alert(1)); height: 10px", "height:10px"),
        ("@import 'https://t.test/a.css'; color: blue", "color:blue"),
        ("position: fixed; z-index: 99999; top: 0", ""),
        ("color: rgb(1, 2, 3) !important", "color:rgb(1, 2, 3) !important"),
        ("font-family: 'Helvetica Neue', Arial", 'font-family:"Helvetica Neue", Arial'),
        ("color: var(--x); border: 1px solid red", "border:1px solid red"),
        # Escapes are decoded by the parser and never written back.
        ("background-color: #fff; color: \\72 ed", "background-color:#fff;color:red"),
        ("display: contents; display: block", "display:block"),
        ("list-style-image: url(x); list-style-type: disc", "list-style-type:disc"),
        ("content: url(x)", ""),
        ("behavior: url(x.htc); -moz-binding: url(x.xml#a)", ""),
    ],
)
def test_style_allow_list(style, expected):
    assert style_clean(style) == expected
    assert style_clean(style_clean(style)) == style_clean(style)


def test_linkify_escapes_first_and_stops_at_punctuation():
    assert linkify('<b>see</b> https://e.test/a?x=1&y="2". then') == (
        '&lt;b&gt;see&lt;/b&gt; <a href="https://e.test/a?x=1&amp;y=">https://e.test/a?x=1&amp;y=</a>'
        "&quot;2&quot;. then"
    )
    assert 'href="https://www.e.test"' in linkify("www.e.test")
    assert linkify("javascript:alert(1)") == "javascript:alert(1)"


def test_plain_text_quotes_are_folded_with_their_attribution():
    html = text_to_html("Thanks!\n\nOn Tue, 3 Mar 2026, Bob <b@e.test> wrote:\n> earlier\n>> older\n")
    assert html.startswith('<div style="white-space:pre-wrap">Thanks!\n</div><details class="quoted">')
    assert "On Tue, 3 Mar 2026, Bob &lt;b@e.test&gt; wrote:\n&gt; earlier\n&gt;&gt; older" in html


def test_gmail_and_blockquote_quotes_are_folded_once():
    source = (
        '<p>new</p><div class="gmail_quote"><div>On Mon wrote:</div><blockquote class="gmail_quote">a'
        "<blockquote>b</blockquote></blockquote></div><blockquote type=cite>c</blockquote>"
    )
    out = html_render(source, policy=policy())
    assert out.count('<details class="quoted">') == 2
    assert out.index('<details class="quoted">') < out.index('<div class="gmail_quote">')
    assert html_render(out, policy=policy()) == out


# --- <style> elements ------------------------------------------------------------------------


def _sheet(html: str) -> str:
    match = re.match(r"<style>(.*?)</style>", html, re.DOTALL)
    return match.group(1) if match else ""


@pytest.mark.parametrize("show", [False, True])
def test_a_newsletter_keeps_its_layout_rules_and_loses_what_fetches(show):
    out = html_render(NEWSLETTER_HTML, policy=policy(show=show))
    sheet = _sheet(out)

    assert problems(out) == []
    assert html_render(out, policy=policy(show=show)) == out
    assert out.count("<style>") == 1
    # Layout, responsive and dark-mode rules survive, with the classes and ids they select.
    assert ".container{width:600px;max-width:600px;margin:0 auto;background-color:#ffffff}" in sheet
    assert "#outlook a{padding:0}" in sheet
    assert "a[x-apple-data-detectors]{color:inherit !important;" in sheet
    assert ".btn a:hover{background-color:#c25f00}" in sheet
    assert "@media only screen and (max-width: 620px){.container{width:100% !important}" in sheet
    assert ".hide-mobile{display:none !important}}" in sheet
    assert "@media screen and (prefers-color-scheme: dark){" in sheet
    font = '@font-face{font-family:"Brand Sans";font-weight:700;src:local("Helvetica Neue Bold"), local(Arial-BoldMT)}'
    assert font in sheet
    assert '<table class="container" id="container" width="600"' in out
    assert '<td class="copy stack-column">' in out
    # What fetches, runs, escapes its box or is not on the list goes; remote images too.
    gone = ["url(", "@import", "@charset", 'Lato";font-style', "expression", "behavior", "binding", "position"]
    gone += ["z-index", "@keyframes", "@supports", "mso-", "-webkit-", "googleapis", "open.gif", "<title>", "Weekly"]
    assert [bit for bit in gone if bit in out] == []
    assert ".hero{color:#ffffff;padding:40px 24px;text-align:center}" in sheet  # the url() shorthand went whole


@pytest.mark.parametrize(
    ("sheet", "expected"),
    [
        ("p { color: red; margin : 0 }", "p{color:red;margin:0}"),
        ("@import url(https://t.test/a.css); p{color:red}", "p{color:red}"),
        ("@import 'https://t.test/a.css'; @charset 'utf-8'; @namespace x url(y);", ""),
        ("p{background:url(https://t.test/x.png);color:red}", "p{color:red}"),
        ("p{background-image:url(data:image/png;base64,AAAA)}", ""),
        ("p{width:expression(alert(1));behavior:url(x.htc);-moz-binding:url(x.xml#a)}", ""),
        ("p{color:red;position:absolute;top:0}", "p{color:red}"),
        ("@font-face{font-family:X;src:url(https://t.test/x.woff2) format('woff2')}", ""),
        ("@font-face{font-family:X;src:local(Arial), url(https://t.test/x.woff2)}", ""),
        ("@font-face{font-family:X;src:local('Arial')}", '@font-face{font-family:X;src:local("Arial")}'),
        ("@font-face x{font-family:X;src:local(Arial)}", ""),
        ('p{font-family:"</style><script>alert(1)</script>"}', ""),
        ("a\\3c/style\\3e{color:red} b{color:blue}", "b{color:blue}"),  # would write a\\</style\\>
        ("p[title='</style>']{color:red}", ""),
        ("}b{color:blue} c{color:green}", "c{color:green}"),
        ("a{color:red}<!-- b{color:blue} -->", "a{color:red}b{color:blue}"),  # HTML comment marks
        ("@media screen and (max-width:600px){.x{display:none!important;background:url(y)}}",
         "@media screen and (max-width:600px){.x{display:none !important}}"),
        ("@media (width < 600px){a{color:red}}", ""),
        ("@media screen{@media (min-width:1px){@media print{@media all{a{color:red}}}}}", ""),
        ("@media screen{.x{background:url(y)}}", ""),
        ("@keyframes k{from{opacity:0}} @supports (display:grid){a{color:red}} @page{margin:0}", ""),
        ("p:not(.x) > b:nth-child(2n+1)::first-line, li ~ a[href^=\"http\"]{color:#333}",
         'p:not(.x) > b:nth-child(2n/**/+1)::first-line, li ~ a[href^="http"]{color:#333}'),
        ("p:host-context(x){color:red} q:unknown(y){color:red} r{--var:1;color:var(--var)}", ""),
        ("p{color:red", "p{color:red}"),
    ],
)  # fmt: skip
def test_style_sheet_allow_list(sheet, expected):
    assert stylesheet_clean(sheet) == expected
    assert stylesheet_clean(expected) == expected


def test_a_style_element_cannot_close_itself_or_hide_markup():
    html = (
        "<style>p{color:red}</style><script>alert(1)</script>"
        '<style>q{content:"</style><img src=x onerror=alert(2)>"}</style>'
        "<textarea><style>t{color:red}</style></textarea><noscript><style>n{color:red}</style></noscript>"
        "<svg><style>s{color:red}</style></svg><!-- <style>c{color:red}</style> --><b>end</b>"
    )
    out = html_render(html, policy=policy())
    assert out.startswith("<style>p{color:red}</style>")
    assert problems(out) == []
    assert "onerror" not in out
    assert "alert" not in out
    assert not re.search(r"\b[tnsc]\{", out)
    assert html_render(out, policy=policy()) == out


def test_style_elements_are_filtered_one_by_one_and_kept_in_order():
    html = "<style>a{color:red</style><p>x</p><style>b{color:blue}</style>"
    out = html_render(html, policy=policy())
    assert out == "<style>a{color:red}b{color:blue}</style><p>x</p>"
    assert html_render(out, policy=policy()) == out


def test_style_sheets_are_bounded_and_stay_idempotent():
    rule = ".c{color:red;margin:0 auto}"
    sheets = [rule * 1000, rule * 1000, rule * 1000]  # each 27,000 characters
    out = stylesheets_clean(sheets)
    assert out == rule * 2000  # the third would pass the bound: it and what follows are left out
    assert len(out) <= MAX_STYLESHEET_CHARS
    assert stylesheets_clean([out]) == out
    assert stylesheets_clean(["x" * (2 * MAX_STYLESHEET_CHARS + 1), rule]) == ""  # not read at all


def test_no_style_element_means_no_sheet():
    assert html_render("<p style=color:red>x</p>", policy=policy()) == '<p style="color:red">x</p>'
    assert html_render("<p>&lt;style&gt;a{color:red}&lt;/style&gt;</p>", policy=policy()).startswith("<p>")


def test_style_elements_of_real_mail_are_filtered_and_idempotent():
    """Every HTML part with a <style> in the shared SpamAssassin corpus (real spam and ham)."""
    folders = [SHARED_CORPORA / "spamassassin" / name for name in ("spam", "easy_ham")]
    if not all(folder.is_dir() for folder in folders):
        pytest.skip("the SpamAssassin corpus is read from ../shared/corpora/spamassassin, absent here")
    checked = 0
    for path in sorted(p for folder in folders for p in folder.iterdir()):
        raw = path.read_bytes()
        if b"<style" not in raw.lower():
            continue
        html = parse_message(raw, received_at=datetime(2026, 1, 1, tzinfo=UTC)).html
        for show in (False, True):
            out = html_render(html, policy=policy(show=show))
            assert problems(out) == [], path.name
            assert html_render(out, policy=policy(show=show)) == out, path.name
        checked += 1
    assert checked > 20
