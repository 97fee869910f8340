"""HTML bodies as plain text (mailbox.rendering.plaintext): the lines a reader saw survive."""

import pytest

from mailbox.rendering.plaintext import html_to_text


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<div>Hello Bob,</div><div>Bye</div>", "Hello Bob,\nBye"),
        ("<p>Line one</p><p>Line two<br>Line three</p>", "Line one\n\nLine two\nLine three"),
        ("one<br><br>two", "one\n\ntwo"),
        ("<h2>Title</h2>text", "Title\n\ntext"),
        ("<blockquote>quoted</blockquote>after", "quoted\n\nafter"),
        ("<ul><li>a</li><li> b </li></ul>", "- a\n- b"),
        ("<table><tr><td>1</td><td>2</td></tr><tr><th>3</th></tr></table>", "1 2\n3"),
        ("<pre>  kept\n    indent</pre>", "  kept\n    indent"),
        ("<p>  runs\n  of   space  </p>", "runs of space"),
    ],
)
def test_block_elements_keep_their_line_breaks(markup, expected):
    assert html_to_text(markup) == expected


def test_entities_are_decoded_once():
    assert (
        html_to_text("<p>Tom &amp; Jerry &lt;b&gt; &#233;t&eacute;&nbsp;x &amp;lt;</p>") == "Tom & Jerry <b> été x &lt;"
    )


def test_script_style_and_title_are_dropped_with_their_content():
    markup = (
        "<html><head><title>Secret title</title><style>p { color: red }</style></head>"
        "<body><p>Visible</p><script>alert('x')</script><template><p>inert</p></template>end</body></html>"
    )
    assert html_to_text(markup) == "Visible\n\nend"


def test_an_unclosed_script_hides_the_rest():
    assert html_to_text("<p>before</p><script>document.write('<p>x</p>')") == "before"


def test_never_more_than_one_blank_line():
    assert html_to_text("<p>a</p><br><br><br><p></p><div></div><p>b</p>") == "a\n\nb"


def test_comments_and_stray_angle_brackets_are_not_text():
    # What a hostile sender would pile up to slow the parser down: unterminated comments and
    # declarations, and lone "<" (the markup reaches html.parser only after html5ever has rewritten it).
    markup = "<p>a &lt; b</p><!-- hidden -->" + "<!x" * 2000 + "<p>tail</p><!--" + "x<" * 2000
    text = html_to_text(markup)
    assert text.startswith("a < b")
    assert "hidden" not in text
