"""Hostile HTML in a real browser: every corpus payload, delivered as real mail and opened in the
real conversation view, runs no script and makes no request off this machine.

Two passes. The viewer pass is the product as users get it: sanitised bodies in sandboxed,
CSP-locked iframes. The sanitiser pass puts the sanitised HTML in an ordinary page with scripts
enabled and no sandbox, so the sanitiser is checked on its own and not only behind the sandbox.
Payloads are batched (many per message, many per page) so the run takes minutes.
"""

import re
from urllib.parse import urlsplit

from mailbox.rendering.body import html_render
from mailbox.rendering.html import UrlPolicy
from mailbox.services import message_import_raw
from tests.e2e.conftest import log_in, off_loop, screenshot
from tests.mailbox.conversation_mail import conversation_message
from tests.xss_corpus import all_payloads

PER_MESSAGE = 120
PER_PAGE = 400
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


def test_hostile_mail_in_the_real_viewer(page, tripwire, mailbox, request):
    payloads = all_payloads()
    bodies = ["".join(f"<div>{marker_variant(p)}</div>\n" for p in batch) for batch in _batches(payloads, PER_MESSAGE)]
    messages = [
        off_loop(
            message_import_raw,
            mailbox=mailbox,
            raw=conversation_message(n, to=mailbox.address, thread="xss", html=body),
            source_tag="test",
        ).message
        for n, body in enumerate(bodies)
    ]
    assert len({m.thread_id for m in messages}) == 1
    popups: list[str] = []
    page.context.on("page", lambda new: popups.append(new.url))
    page.add_init_script(TRIPWIRE_JS)
    log_in(page, mailbox.address)
    network = _guard_network(page)

    page.goto(f"/t/{messages[0].thread_id}/")
    frames = page.locator("iframe.message-body")
    assert frames.count() == len(messages)
    viewer_hits = page.evaluate(SETTLED_HITS)  # no script can run in the frames: no timers to wait for

    body_frames = [f for f in page.frames if "/body/" in f.url]
    assert len(body_frames) == len(messages), [f.url for f in page.frames]
    for frame in body_frames:
        assert frame.evaluate("document.readyState") == "complete"
        assert frame.locator("script, svg, math, form, iframe, object, embed, link, style[src]").count() == 0
    screenshot(page, request.node.name, "viewer")
    assert viewer_hits == []
    assert page.evaluate("window.__xss") == []
    assert tripwire.dialogs == []
    assert network["foreign"] == []
    assert popups == []
    assert page.url.endswith(f"/t/{messages[0].thread_id}/")
    assert any("/body/" in url for url in network["all"])


def test_sanitised_payloads_run_nothing_even_without_the_sandbox(page, tripwire):
    network = _guard_network(page)
    page.add_init_script(TRIPWIRE_JS)
    policy = UrlPolicy(cid_url=lambda cid: None, proxy_url=None, own_prefixes=("/m/1/cid/",))
    payloads = all_payloads()
    sanitised = [html_render(p, policy=policy) for p in payloads + [marker_variant(p) for p in payloads]]

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
