"""Hostile HTML in a real browser: every corpus payload, delivered as real mail and opened in the
real conversation view, runs no script and makes no request off this machine.

Two passes. The viewer pass is the product as users get it: sanitised bodies in sandboxed,
CSP-locked iframes. The sanitiser pass puts the sanitised HTML in an ordinary page with scripts
enabled and no sandbox, so the sanitiser is checked on its own and not only behind the sandbox.
Payloads are batched (many per message, many per page) so the run takes minutes.
"""

import mimetypes
import re
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest

from delivery.models import InboundReceipt
from mailbox.models import Message
from mailbox.rendering.body import html_render
from mailbox.rendering.html import UrlPolicy
from mailbox.services import message_import_raw
from mailbox.services.ingest import inbound_accept
from tests.e2e.conftest import log_in, off_loop, screenshot
from tests.mailbox.conversation_mail import conversation_message
from tests.xss_corpus import Corpus, corpus_load, image_type

PER_MESSAGE = 120
PER_PAGE = 400
DOCUMENTS_PER_THREAD = 25
FILES_PER_MESSAGE = 20
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
# What a sending server puts in front of a message it relays: with it, a garbage-prefixed message
# has a header block for a lenient parser to start from.
ENVELOPE = (
    "Received: from mx.example.org by mailsite.test; Mon, 02 Nov 2026 10:00:00 +0000\r\n"
    "From: Carol <carol@example.org>\r\nTo: alice@example.test\r\nSubject: {name}\r\n"
    "Message-ID: <{name}@example.org>\r\n"
)
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Records what scripts did: alert/confirm/prompt/print calls and postMessage markers from frames.
TRIPWIRE_JS = """
window.__xss = [];
for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = (...args) => { window.__xss.push(name + ":" + args.join(",")); };
}
window.addEventListener("message", (event) => { window.__xss.push("message:" + String(event.data)); });
// Resolves once the page and its frames have loaded (images tried, their error handlers run), the
// page's CSS animations have started, two frames have been rendered since (autofocus, animation
// and transition events fired) and the tasks queued by all of that have run: what a payload's
// handler needs to have had its chance. Its value is what the tripwire had caught at that moment
// (not a round trip later).
const afterFrames = (n) => new Promise((resolve) => {
  const next = () => (n-- > 0 ? requestAnimationFrame(next) : setTimeout(resolve));
  next();
});
window.__settled = new Promise((resolve) => window.addEventListener("load", resolve))
  .then(() => afterFrames(1))
  .then(() => Promise.all(document.getAnimations().map((animation) => animation.ready)))
  .then(() => afterFrames(2))
  .then(() => window.__xss.slice());
"""
# Handlers that fire late — after decoding fails, on autofocus, when an animation starts — in
# unsanitised HTML: the tripwire must have caught them all by the time the page says it settled.
LATE_HANDLERS = (
    "<style>@keyframes tripwire{from{opacity:0}to{opacity:1}}</style>"
    "<img src=data:image/png;base64,AAAA onerror=alert(1)>"
    "<div style=animation:tripwire+1s onanimationstart=alert(3)>x</div>"
)
SETTLED_HITS = "window.__settled"
AUTOFOCUS_HANDLER = "<input autofocus onfocus=alert(2)>"  # a document focuses one element only
# The marker a payload variant calls instead of alert: visible to the top page even from a
# sandboxed frame. No quotes, spaces, "=" or ">", so it survives in any attribute, quoted or not.
MARKER = "(function(x){top.postMessage(String(x),String.fromCharCode(42))})"


def marker_variant(payload: str) -> str:
    return re.sub(r"\balert\b", MARKER, payload)


def hostile_files_message(n: int, *, to: str, files: dict[str, bytes]) -> bytes:
    """An HTML message embedding every file as a cid: image and attaching it under its own type."""
    msg = EmailMessage()
    msg["From"] = "Carol <carol@example.org>"
    msg["To"] = to
    msg["Subject"] = "Files" if n == 0 else "Re: Files"
    msg["Message-ID"] = f"<files-{n}@example.org>"
    if n:
        msg["In-Reply-To"] = f"<files-{n - 1}@example.org>"
    msg.set_content("Files attached.")
    msg.add_alternative("".join(f'<p><img src="cid:f{i}@x" alt=""></p>' for i in range(len(files))), subtype="html")
    for i, (name, data) in enumerate(files.items()):
        kind = image_type(data) or "image/png"  # a non-image claiming to be one
        msg.get_payload()[1].add_related(data, *kind.split("/"), cid=f"<f{i}@x>", filename=name)
    for name, data in files.items():
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        msg.add_attachment(data, *kind.split("/", 1), filename=name.rsplit("/", 1)[-1])
    return bytes(msg)


def _batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _guard_network(page) -> dict[str, list[str]]:
    """Abort and record every request for a host not on this machine."""
    seen: dict[str, list[str]] = {"all": [], "foreign": []}

    def route(route) -> None:
        url = route.request.url
        seen["all"].append(url)
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "about:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            seen["foreign"].append(url)
            route.abort()

    page.context.route("**/*", route)
    return seen


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return corpus_load()


def _import(mailbox, raws: list[bytes]) -> list:
    return [off_loop(message_import_raw, mailbox=mailbox, raw=raw, source_tag="test").message for raw in raws]


def _watch(page, mailbox) -> tuple[dict[str, list[str]], list[str]]:
    """Log in with the tripwire armed; the requests seen and the pop-ups opened from then on."""
    popups: list[str] = []
    page.context.on("page", lambda new: popups.append(new.url))
    page.add_init_script(TRIPWIRE_JS)
    log_in(page, mailbox.address)
    return _guard_network(page), popups


def _view_thread(page, tripwire, network, popups, thread_id: int, count: int) -> list:
    """Open the conversation in the real viewer and check that none of its ``count`` bodies ran
    anything, fetched anything off this machine or navigated; returns the body frames."""
    page.goto(f"/t/{thread_id}/")
    assert page.locator("iframe.message-body").count() == count
    viewer_hits = page.evaluate(SETTLED_HITS)  # no script can run in the frames: no timers to wait for
    body_frames = [f for f in page.frames if "/body/" in f.url]
    assert len(body_frames) == count, [f.url for f in page.frames]
    for frame in body_frames:
        assert frame.evaluate("document.readyState") == "complete"
        assert frame.locator("script, svg, math, form, iframe, object, embed, link, style[src]").count() == 0
    assert viewer_hits == []
    assert page.evaluate("window.__xss") == []
    assert tripwire.dialogs == []
    assert network["foreign"] == []
    assert popups == []
    assert page.url.endswith(f"/t/{thread_id}/")
    assert any("/body/" in url for url in network["all"])
    return body_frames


def test_every_payload_in_the_real_viewer(page, tripwire, mailbox, request, corpus):
    bodies = [
        "".join(f"<div>{marker_variant(p)}</div>\n" for p in batch) for batch in _batches(corpus.payloads, PER_MESSAGE)
    ]
    raws = [conversation_message(n, to=mailbox.address, thread="xss", html=b) for n, b in enumerate(bodies)]
    messages = _import(mailbox, raws)
    assert len({m.thread_id for m in messages}) == 1
    network, popups = _watch(page, mailbox)
    _view_thread(page, tripwire, network, popups, messages[0].thread_id, len(messages))
    screenshot(page, request.node.name, "viewer")


def test_every_file_as_a_whole_body_in_the_real_viewer(page, tripwire, mailbox, corpus):
    """Each file of the corpus (HTML, XML, SVG, a notebook, each list whole...) as one body."""
    names = sorted(corpus.documents)
    threads = _batches(names, DOCUMENTS_PER_THREAD)
    for t, batch in enumerate(threads):
        raws = [
            conversation_message(n, to=mailbox.address, thread=f"doc{t}", html=marker_variant(corpus.documents[name]))
            for n, name in enumerate(batch)
        ]
        assert len({m.thread_id for m in _import(mailbox, raws)}) == 1
    network, popups = _watch(page, mailbox)
    viewed = 0
    for t, batch in enumerate(threads):
        thread_id = Message.objects.get(mailbox=mailbox, message_id=f"doc{t}-0@example.org").thread_id
        viewed += len(_view_thread(page, tripwire, network, popups, thread_id, len(batch)))
    assert viewed == len(corpus.documents)


def test_every_file_as_an_attachment_and_an_inline_image(page, tripwire, mailbox, corpus):
    """Every file attached (under its own type) and embedded as a cid: image (images under theirs,
    anything else claiming to be a PNG): downloads are attachments the browser never renders, and
    each inline image, even opened on its own in a tab, runs nothing."""
    names = sorted(corpus.attachments)
    raws = [
        hostile_files_message(n, to=mailbox.address, files={name: corpus.attachments[name] for name in batch})
        for n, batch in enumerate(_batches(names, FILES_PER_MESSAGE))
    ]
    messages = _import(mailbox, raws)
    network, popups = _watch(page, mailbox)
    frames = _view_thread(page, tripwire, network, popups, messages[0].thread_id, len(messages))

    downloads = page.locator("a[download]").evaluate_all("links => links.map((a) => a.href)")
    assert len(downloads) == 2 * len(names)  # each file attached, and listed again as an inline part
    for url in downloads:
        headers = page.request.get(url).headers
        assert headers["content-disposition"].startswith("attachment"), url
        assert headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"html|xml|svg|javascript", headers["content-type"]), headers["content-type"]
    inline = [src for frame in frames for src in frame.locator("img").evaluate_all("imgs => imgs.map((i) => i.src)")]
    assert len(inline) == len(names)
    for url in inline:
        # Opened on its own in a tab: an image for the browser, and a sandboxed document without
        # scripts at all (the tripwire cannot run there either; dialogs and pop-ups would show).
        headers = page.goto(url).headers
        assert headers["content-type"] in INLINE_TYPES, (url, headers["content-type"])
        assert headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in headers["content-security-policy"]
    assert tripwire.dialogs == []
    assert network["foreign"] == []
    assert popups == []


def test_raw_hostile_messages_through_ingestion_then_the_viewer(page, tripwire, mailbox, corpus):
    """Each raw message of the corpus, as it is and with the envelope headers a sender adds in front,
    accepted as inbound mail and parsed by the real pipeline (tasks run here: the ingestion, not the
    transport, is under test); what is delivered is opened in the viewer, what is not is quarantined
    with a reason."""
    if not corpus.messages:
        pytest.skip(f"no raw messages in {corpus.root} (the html5sec test.eml is read from the shared corpus)")
    delivered, quarantined = [], []
    for name, raw in sorted(corpus.messages.items()):
        for variant in (raw, ENVELOPE.format(name=name).encode() + raw):
            stored = off_loop(inbound_accept, source="smtp", raw=variant, envelope_recipients=[mailbox.address]).receipt
            stored.refresh_from_db()
            message = Message.objects.filter(mailbox=mailbox, receipt=stored).first()
            if message is None:
                assert stored.status == InboundReceipt.Status.QUARANTINED, (name, stored.status, stored.last_error)
                quarantined.append(name)
            else:
                delivered.append(message)
    assert delivered, "neither form of any raw message was delivered"
    network, popups = _watch(page, mailbox)
    for message in delivered:
        _view_thread(page, tripwire, network, popups, message.thread_id, 1)


def test_sanitised_payloads_run_nothing_even_without_the_sandbox(page, tripwire, corpus):
    network = _guard_network(page)
    page.add_init_script(TRIPWIRE_JS)
    policy = UrlPolicy(cid_url=lambda cid: None, proxy_url=None, own_prefixes=("/m/1/cid/",))
    bodies = corpus.bodies()
    sanitised = [html_render(p, policy=policy) for p in bodies + [marker_variant(p) for p in bodies]]

    current = {"html": ""}
    # A real navigation per batch (so the tripwire init script runs), answered without the server.
    page.route("**/__sanitised__", lambda route: route.fulfill(body=current["html"], content_type="text/html"))
    # The tripwire itself works: unsanitised payloads are caught, by the alert and by the marker,
    # late handlers included, by the time the page has settled.
    current["html"] = LATE_HANDLERS + AUTOFOCUS_HANDLER + marker_variant(LATE_HANDLERS.replace("tripwire", "marker"))
    page.goto("/__sanitised__")
    assert sorted(page.evaluate(SETTLED_HITS)) == ["alert:1", "alert:2", "alert:3", "message:1", "message:3"]
    for batch in _batches(sanitised, PER_PAGE):
        current["html"] = "<!doctype html><body>" + "".join(f"<div>{html}</div>" for html in batch)
        page.goto("/__sanitised__")
        hits = page.evaluate(SETTLED_HITS)
        assert hits == [], hits
        assert page.locator("script").count() == 0
    # The batches share one page, so a payload's kept sheet (body{font:100px…}) styles them all;
    # the fixture's full-page screenshot of that giant page takes longer than its timeout.
    current["html"] = f"<!doctype html><p>{len(sanitised)} sanitised payloads ran nothing.</p>"
    page.goto("/__sanitised__")

    assert tripwire.dialogs == []
    assert network["foreign"] == []
