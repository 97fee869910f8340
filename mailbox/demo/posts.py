"""What a thread says and who says it: the posts of one thread, before dates, ids and bytes.

Every function draws from the caller's ``random.Random`` in a fixed order; changing that order changes
every message after it, so keep draws where they are.
"""

import html
import random
from dataclasses import dataclass, field

from mailbox.demo.people import Cast, Person
from mailbox.demo.texts import (
    EXTERNAL_TOPICS,
    HEADLINES,
    LIST_TOPICS,
    NEWSLETTERS,
    NOTIFICATIONS,
    PERSONAL_TOPICS,
    PLACEHOLDERS,
    SMALL_TALK,
    WORK_TOPICS,
    Topic,
)


@dataclass
class Post:
    """One message of a thread before it has a date, ids and bytes."""

    sender: Person
    to: list[Person]
    subject: str
    text: str
    cc: list[Person] = field(default_factory=list)
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    attachment: str = ""


def thread_posts(rng: random.Random, cast: Cast, *, limit: int) -> list[Post]:
    """One thread of a random kind, at most ``limit`` posts long."""
    kind = rng.choices(
        ("work", "external", "personal", "list", "newsletter", "notification"), (30, 14, 10, 14, 12, 20)
    )[0]
    values = _values(rng)
    if kind == "newsletter":
        return [_newsletter(rng, cast.user, values)]
    if kind == "notification":
        return [_notification(rng, cast.user, values)]
    length = min(limit, rng.choices(range(1, 13), (8, 14, 14, 12, 9, 7, 5, 4, 3, 2, 2, 1))[0])
    if kind == "list":
        topic = rng.choice(LIST_TOPICS)
        members = rng.sample(cast.colleagues, k=min(length, 5))
        return _list_thread(rng, cast, topic, members, _length_for(topic, length), values)
    pool, topics = {"work": (cast.colleagues, WORK_TOPICS), "external": (cast.external, EXTERNAL_TOPICS)}.get(
        kind, (cast.friends, PERSONAL_TOPICS)
    )
    topic = rng.choice(topics)
    others = rng.sample(pool, k=rng.choices((1, 2, 3), (6, 3, 1))[0])
    return _conversation(
        rng, cast.user, others[:1] if topic.one_to_one else others, topic, _length_for(topic, length), values
    )


def html_from_text(text: str) -> str:
    paragraphs = (html.escape(p).replace("\n", "<br>") for p in text.strip().split("\n\n"))
    return '<div dir="ltr">' + "".join(f"<p>{p}</p>" for p in paragraphs) + "</div>"


def _values(rng: random.Random) -> dict[str, str]:
    """One consistent set of placeholder values for a thread."""
    values = {key: rng.choice(options) for key, options in PLACEHOLDERS.items()}
    values |= {
        "number": str(rng.randint(1200, 9800)),
        "pr": str(rng.randint(300, 990)),
        "version": f"2.{rng.randint(4, 19)}.{rng.randint(0, 5)}",
        "ref": "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=6)),
        "amount": f"{rng.randint(40, 900)}.{rng.randint(0, 99):02d}",
        "price": str(rng.randint(39, 189)),
        "issue": str(rng.randint(120, 180)),
        "headline": rng.choice(HEADLINES),
    }
    return values


def _length_for(topic: Topic, drawn: int) -> int:
    """Long threads only where the topic has enough to say; small talk fills at most a few messages."""
    return min(drawn, len(topic.replies) + 6)


def _conversation(
    rng: random.Random, user: Person, others: list[Person], topic: Topic, length: int, values: dict[str, str]
) -> list[Post]:
    """Reply-all exchanges: each message goes to the previous sender, copying everyone else."""
    people = [user, *others]
    sender = user if rng.random() < 0.2 else others[0]
    replies = _reply_deck(rng, topic)
    posts: list[Post] = []
    for position in range(length):
        if position:
            sender = rng.choice([p for p in people if p != posts[-1].sender])
        to = [posts[-1].sender] if posts else [p for p in people if p != sender][:1]
        cc = [p for p in people if p not in (sender, *to)]
        body = topic.opening if not position else _reply_text(rng, replies)
        posts.append(
            Post(
                sender=sender,
                to=to,
                cc=cc,
                subject=_subject(topic.subject.format_map(values), reply=position > 0),
                text=_letter(rng, sender, [*to, *cc], body.format_map(values)),
                attachment=topic.attachment if not position else "",
            )
        )
    return posts


def _list_thread(
    rng: random.Random, cast: Cast, topic: Topic, members: list[Person], length: int, values: dict[str, str]
) -> list[Post]:
    headers = {
        "List-Id": f"Team discussion <team-list.{cast.user.domain}>",
        "List-Post": f"<mailto:{cast.team_list.address}>",
        "List-Unsubscribe": f"<mailto:team-list-leave@{cast.user.domain}>",
        "Precedence": "list",
    }
    replies = _reply_deck(rng, topic)
    posts: list[Post] = []
    for position in range(length):
        # The user chimes in now and then, never twice in a row.
        own_turn = position > 0 and posts[-1].sender != cast.user and rng.random() < 0.2
        sender = cast.user if own_turn else rng.choice(members)
        body = topic.opening if not position else _reply_text(rng, replies)
        subject = _subject("[team-list] " + topic.subject.format_map(values), reply=position > 0)
        text = _letter(rng, sender, [], body.format_map(values))
        posts.append(Post(sender=sender, to=[cast.team_list], subject=subject, text=text, headers=headers))
    return posts


def _reply_deck(rng: random.Random, topic: Topic) -> tuple[list[str], list[str]]:
    """The topic's own replies and the small talk, each shuffled and drawn without repeats within a thread."""
    own, small_talk = list(topic.replies), list(SMALL_TALK)
    rng.shuffle(own)
    rng.shuffle(small_talk)
    return own, small_talk


def _reply_text(rng: random.Random, deck: tuple[list[str], list[str]]) -> str:
    """The topic's own replies first; then the small talk that fills any long thread."""
    own, small_talk = deck
    parts = [own.pop() if own else small_talk.pop()]
    if rng.random() < 0.25 and small_talk:
        parts.append(small_talk.pop())
    return " ".join(parts)


def _subject(subject: str, *, reply: bool) -> str:
    return f"Re: {subject}" if reply else subject


def _letter(rng: random.Random, sender: Person, recipients: list[Person], body: str) -> str:
    names = [p.first_name for p in recipients]
    if len(names) == 1:
        greeting = rng.choice(("Hi {0},", "Hey {0},", "Hello {0},", "{0},")).format(names[0])
    elif len(names) == 2:
        greeting = f"Hi {names[0]} and {names[1]},"
    else:
        greeting = rng.choice(("Hi all,", "Hi everyone,", "Hello team,"))
    closing = rng.choice(("Thanks,", "Best,", "Cheers,", "Best regards,", "Thanks!"))
    return f"{greeting}\n\n{body}\n\n{closing}\n{sender.first_name}\n"


def _notification(rng: random.Random, user: Person, values: dict[str, str]) -> Post:
    sender, topic = rng.choice(NOTIFICATIONS)
    text = topic.opening.format_map(values) + "\n"
    return Post(
        sender=sender,
        to=[user],
        subject=topic.subject.format_map(values),
        text=text,
        html=html_from_text(text),
        headers={"Auto-Submitted": "auto-generated"},
        attachment=topic.attachment,
    )


def _newsletter(rng: random.Random, user: Person, values: dict[str, str]) -> Post:
    sender, subject = rng.choice(NEWSLETTERS)
    stories = rng.sample(HEADLINES, k=3)
    text = (
        f"This week in {sender.name}\n\n"
        + "\n\n".join(
            f"{title}\nA short read on what changed, why it matters and what to try first." for title in stories
        )
        + f"\n\nYou receive this because you subscribed at {sender.domain}. Unsubscribe: https://{sender.domain}/u\n"
    )
    return Post(
        sender=sender,
        to=[user],
        subject=subject.format_map(values),
        text=text,
        html=_newsletter_html(sender, stories),
        headers={
            "List-Id": f"{sender.name} <news.{sender.domain}>",
            "List-Unsubscribe": f"<https://{sender.domain}/u>",
            "Precedence": "bulk",
        },
    )


def _newsletter_html(sender: Person, stories: list[str]) -> str:
    items = "".join(
        f'<h2 style="font-size:18px"><a href="https://{sender.domain}/a/{n}">{html.escape(title)}</a></h2>'
        "<p>A short read on what changed, why it matters and what to try first.</p>"
        for n, title in enumerate(stories, 1)
    )
    return (
        '<!doctype html><html><body style="font-family:sans-serif;max-width:600px;margin:auto">'
        f"<h1>This week in {html.escape(sender.name)}</h1>{items}"
        f'<p style="color:#888;font-size:12px"><a href="https://{sender.domain}/u">Unsubscribe</a></p></body></html>'
    )
