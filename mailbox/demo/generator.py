"""Turn generated threads into dated RFC 5322 messages, deterministic for a seed apart from the dates."""

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from mailbox.demo.attachments import ATTACHMENTS
from mailbox.demo.people import Person, cast_for
from mailbox.demo.posts import Post, html_from_text, thread_posts

MAX_AGE = timedelta(days=90)
RECENT_THREADS = 5  # the first threads end today, so the inbox shows times rather than dates
# CRLF line endings and 7-bit-clean bodies, as a mail client hands them to SMTP.
_POLICY = policy.SMTP.clone(cte_type="7bit")


@dataclass(frozen=True)
class DemoMessage:
    raw: bytes
    date: datetime
    by_user: bool
    is_read: bool


def demo_messages(*, user: Person, count: int, seed: int, now: datetime) -> list[DemoMessage]:
    """``count`` messages in threads, oldest first. Random draws never depend on ``now``, so a seed fixes
    everything but the dates."""
    rng = random.Random(seed)  # noqa: S311 - demo content, not security
    cast = cast_for(user)
    messages: list[DemoMessage] = []
    index = 0
    while len(messages) < count:
        posts = thread_posts(rng, cast, limit=count - len(messages))
        messages += _thread_render(rng, posts, user=user, recent=index < RECENT_THREADS, now=now)
        index += 1
    return sorted(messages, key=lambda m: m.date)


def _thread_render(
    rng: random.Random, posts: list[Post], *, user: Person, recent: bool, now: datetime
) -> list[DemoMessage]:
    """Date, identify and encode a thread's posts; each reply references every message before it."""
    dates = _thread_dates(rng, len(posts), recent=recent, now=now)
    ids: list[str] = []
    rendered = []
    for position, (post, date) in enumerate(zip(posts, dates, strict=True)):
        ids.append(f"{rng.getrandbits(64):016x}.{rng.getrandbits(24):06x}@{post.sender.domain}")
        parent = (posts[position - 1], dates[position - 1]) if position else None
        raw = _encode(rng, post, date=date, ids=ids, parent=parent)
        by_user = post.sender == user
        unread_odds = rng.random()
        is_read = by_user or unread_odds >= _unread_probability(now - date)
        rendered.append(DemoMessage(raw=raw, date=date, by_user=by_user, is_read=is_read))
    return rendered


def _thread_dates(rng: random.Random, length: int, *, recent: bool, now: datetime) -> list[datetime]:
    """Replies minutes to two days apart; the thread ends in the last 90 days, a recent one today."""
    gaps = [timedelta(minutes=_reply_minutes(rng)) for _ in range(length - 1)]
    if recent:
        since_midnight = now - datetime.combine(now.date(), time(), tzinfo=UTC)
        end_age = max(timedelta(minutes=2), min(timedelta(hours=6), since_midnight) * rng.random())
    else:
        end_age = MAX_AGE * rng.random() ** 1.6 + timedelta(hours=1)
    end_age = min(end_age, MAX_AGE - sum(gaps, timedelta()))
    dates = [now - end_age]
    for gap in reversed(gaps):
        dates.insert(0, dates[0] - gap)
    return dates


def _reply_minutes(rng: random.Random) -> float:
    bucket = rng.random()
    if bucket < 0.4:
        return rng.uniform(3, 60)
    if bucket < 0.8:
        return rng.uniform(60, 8 * 60)
    return rng.uniform(8 * 60, 48 * 60)


def _unread_probability(age: timedelta) -> float:
    """Fresh mail is mostly unread; a month-old message has almost certainly been seen."""
    for limit, probability in ((1, 0.8), (3, 0.5), (10, 0.25), (30, 0.1)):
        if age < timedelta(days=limit):
            return probability
    return 0.03


def _encode(
    rng: random.Random, post: Post, *, date: datetime, ids: list[str], parent: tuple[Post, datetime] | None
) -> bytes:
    """``ids`` ends with this message's own id; the ones before it are its ancestors, oldest first."""
    msg = EmailMessage(policy=_POLICY)
    _set_headers(msg, post, date=date, ids=ids)
    _set_body(rng, msg, post, text=post.text + (_quote(*parent) if parent else ""))
    _fix_boundaries(rng, msg)
    return msg.as_bytes()


def _set_headers(msg: EmailMessage, post: Post, *, date: datetime, ids: list[str]) -> None:
    msg["From"] = post.sender.header
    msg["To"] = [p.header for p in post.to]
    if post.cc:
        msg["Cc"] = [p.header for p in post.cc]
    msg["Subject"] = post.subject
    msg["Date"] = format_datetime(date.astimezone(timezone(timedelta(hours=post.sender.utc_offset))))
    msg["Message-ID"] = f"<{ids[-1]}>"
    if len(ids) > 1:
        msg["In-Reply-To"] = f"<{ids[-2]}>"
        msg["References"] = " ".join(f"<{i}>" for i in ids[:-1])
    for name, value in post.headers.items():
        msg[name] = value


def _set_body(rng: random.Random, msg: EmailMessage, post: Post, *, text: str) -> None:
    msg.set_content(text)
    if post.html or post.sender.domain == "brightwave.example":
        # Brightwave's mail client sends an HTML alternative with everything.
        msg.add_alternative(post.html or html_from_text(text), subtype="html")
    if post.attachment:
        filename, maintype, subtype, data = ATTACHMENTS[post.attachment](rng)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)


def _quote(parent: Post, date: datetime) -> str:
    quoted = "\n".join(f"> {line}".rstrip() for line in parent.text.rstrip().splitlines())
    when = date.strftime("%a, %d %b %Y at %H:%M")
    return f"\nOn {when} UTC, {parent.sender.name} <{parent.sender.address}> wrote:\n{quoted}\n"


def _fix_boundaries(rng: random.Random, msg: EmailMessage) -> None:
    """The standard library draws MIME boundaries from the global random state; draw ours from the seed."""
    for part in msg.walk():
        if part.is_multipart():
            part.set_boundary(f"=_demo_{rng.getrandbits(64):016x}")
