"""Reads of the mailbox app. Every user-triggered read is scoped to the user's own mailbox."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.db.models import Exists, F, OuterRef, QuerySet

from mailbox.live import tab_source_tag
from mailbox.models import Alias, Domain, Label, Mailbox, Message, ThreadLabel
from mailsite.db import fetch_prepared
from mailsite.models import DomainEvent
from threads.models import Thread

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cursor:
    """A keyset position in a thread list: the (last_message_at, thread id) of a row."""

    last_message_at: datetime
    thread_id: int

    def encode(self) -> str:
        return f"{self.last_message_at.isoformat()}_{self.thread_id}"

    @classmethod
    def decode(cls, value: str) -> "Cursor | None":
        """Parse a cursor from a query string; ``None`` for anything malformed."""
        stamp, _, thread_id = value.rpartition("_")
        try:
            when = datetime.fromisoformat(stamp)
            return cls(when, int(thread_id)) if when.tzinfo else None
        except ValueError:
            return None


@dataclass(slots=True)
class ThreadRow:
    """What a list row shows of a thread (the fields ``thread_row`` reads), read without building
    a model instance: a page of rows costs a fraction of the CPU of 50 ``Thread`` objects."""

    id: int
    subject: str
    participants: list[dict]  # all of them up to three, else the first and the latest three: all a row names
    message_count: int
    unread_count: int
    starred_count: int
    has_attachments: bool
    snippet: str
    last_message_at: datetime | None
    # The thread's labels, system ones too, in no order: the view keeps the user labels and orders
    # them (joining the labels and sorting in the page's statement cost more than the rest of it).
    label_ids: list[int]
    chips: list[Label] = field(default_factory=list)  # set by the view


@dataclass(frozen=True)
class ThreadPage:
    threads: list[Thread] | list[ThreadRow]
    older: Cursor | None
    newer: Cursor | None = None


@dataclass(frozen=True)
class ThreadListView:
    """Which thread list a page shows: a label's, or one of the two lists no label holds."""

    kind: str  # "label", "starred", "all" or "search"
    label: Label | None = None

    @property
    def key(self) -> str:
        """How the list is named in URLs and live-update requests: a label id, "starred" or "all"."""
        return str(self.label.id) if self.label is not None else self.kind

    @property
    def name(self) -> str:
        if self.label is not None:
            return self.label.name
        return {"starred": "Starred", "all": "All mail", "search": "Search results"}[self.kind]


def mailbox_get_for_user(*, user: AbstractBaseUser) -> Mailbox | None:
    """The user's mailbox; no query when the user was loaded with it (``mailbox.auth`` does that
    for every request), one otherwise."""
    if user.pk is None:
        return None
    try:
        return user.mailbox  # type: ignore[attr-defined]
    except Mailbox.DoesNotExist:
        return None


def thread_list_view_get(*, mailbox: Mailbox, key: str) -> ThreadListView | None:
    """The list named ``key`` ("starred", "all", "search" or one of the mailbox's label ids); ``None``
    if no such list."""
    if key in ("starred", "all", "search"):
        return ThreadListView(kind=key)
    label = label_get_for_mailbox(mailbox=mailbox, label_id=int(key)) if key.isdigit() else None
    return ThreadListView(kind="label", label=label) if label is not None else None


# What a list row shows of a thread: loading (and JSON-decoding) no more keeps a page's CPU down.
ROW_FIELDS = (
    "id",
    "mailbox_id",
    "subject",
    "participants",
    "message_count",
    "unread_count",
    "starred_count",
    "has_attachments",
    "snippet",
    "last_message_at",
)


def _list_rows(mailbox: Mailbox, view: ThreadListView) -> tuple[QuerySet, str, str]:
    """The rows of a list, with the names of their (time, thread id) keyset columns."""
    if view.label is not None:
        rows = ThreadLabel.objects.filter(mailbox=mailbox, label=view.label).select_related("thread")
        rows = rows.only("last_message_at", "thread_id", *(f"thread__{field}" for field in ROW_FIELDS))
        if _hides_spam_and_trash(view.label):
            rows = rows.filter(~Exists(_hidden(mailbox, "thread_id", "thread__message_count")))
        return rows, "last_message_at", "thread_id"
    threads = Thread.objects.filter(mailbox_id=mailbox.id, last_message_at__isnull=False).only(*ROW_FIELDS)
    if view.kind == "search":
        # A search page's rows stay as long as the thread exists: ``in:trash`` or ``in:anywhere``
        # finds threads that no other list but their folder shows, and a live update of one (read
        # in another tab, say) must not take it off the results.
        return threads, "last_message_at", "id"
    threads = threads.filter(~Exists(_hidden(mailbox)))
    if view.kind == "starred":
        return threads.filter(starred_count__gt=0), "last_message_at", "id"
    return threads, "last_message_at", "id"


def _hidden(mailbox: Mailbox, thread: str = "pk", message_count: str = "message_count") -> QuerySet:
    """The Spam or Trash row of the outer query's thread (the references ``thread`` and
    ``message_count``) when the thread is wholly there: such a thread shows only in its own list
    (and in searches), as in Gmail."""
    return ThreadLabel.objects.filter(
        mailbox=mailbox,
        thread_id=OuterRef(thread),
        label__role__in=[Label.Role.SPAM, Label.Role.TRASH],
        message_count=OuterRef(message_count),
    )


# A page of a list in one statement: the rows and each row's user labels (chips). Written in SQL
# because building the ORM query and 50 model instances cost several times the CPU of the database
# work (the inbox is the most requested page). ``_list_rows`` is the same lists in the ORM, for
# single rows; tests hold the two to the same membership.
# Times come as integer microseconds since the epoch (exact, so a keyset cursor loses nothing):
# Django's time zone-aware timestamp loader is pure Python and was half the CPU of a page's rows.
_MICROSECONDS = "(EXTRACT(EPOCH FROM {}) * 1000000)::bigint"
_ROW_COLUMNS = f"""t.id, t.subject,
    CASE WHEN jsonb_array_length(t.participants) > 3
         THEN jsonb_path_query_array(t.participants, '$[0, last - 2 to last]') ELSE t.participants END, t.message_count,
    t.unread_count, t.starred_count, t.has_attachments, t.snippet, {_MICROSECONDS.format("t.last_message_at")},
    ARRAY(SELECT c.label_id FROM mailbox_threadlabel c
          WHERE c.mailbox_id = %(mailbox)s AND c.thread_id = t.id)"""  # noqa: S608 - constant SQL
# Threads wholly in Spam or Trash show only in their own list (and in searches), as in Gmail. The
# Inbox needs no such test: Spam and Trash take a thread out of it. Sent does: a conversation
# reported as spam keeps your own messages in Sent. Drafts have their own page.
_NOT_HIDDEN = """NOT EXISTS (SELECT 1 FROM mailbox_threadlabel h JOIN mailbox_label hl ON hl.id = h.label_id
    WHERE h.mailbox_id = %(mailbox)s AND h.thread_id = t.id AND hl.role IN ('spam', 'trash')
    AND h.message_count = t.message_count)"""
_LABEL_SOURCE = """mailbox_threadlabel k JOIN threads_thread t ON t.id = k.thread_id
        WHERE k.mailbox_id = %(mailbox)s AND k.label_id = %(label)s"""
_LIST_SOURCES = {
    # (FROM and WHERE, the keyset columns)
    "label": (_LABEL_SOURCE, ("k.last_message_at", "k.thread_id")),
    "label_hiding": (f"{_LABEL_SOURCE} AND {_NOT_HIDDEN}", ("k.last_message_at", "k.thread_id")),
    "starred": (
        f"""threads_thread t WHERE t.mailbox_id = %(mailbox)s AND t.last_message_at IS NOT NULL
        AND t.starred_count > 0 AND {_NOT_HIDDEN}""",
        ("t.last_message_at", "t.id"),
    ),
    "all": (
        f"""threads_thread t WHERE t.mailbox_id = %(mailbox)s AND t.last_message_at IS NOT NULL
        AND {_NOT_HIDDEN}""",
        ("t.last_message_at", "t.id"),
    ),
}


def _page_sql(kind: str, *, older_than: Cursor | None, newer_than: Cursor | None) -> str:
    source, (stamp, ident) = _LIST_SOURCES[kind]
    direction = "DESC"
    if newer_than is not None:
        source += f" AND ({stamp}, {ident}) > (%(stamp)s, %(ident)s)"
        direction = "ASC"
    elif older_than is not None:
        source += f" AND ({stamp}, {ident}) < (%(stamp)s, %(ident)s)"
    order = f"ORDER BY {stamp} {direction}, {ident} {direction} LIMIT {PAGE_SIZE + 1}"
    return f"SELECT {_ROW_COLUMNS}, {_MICROSECONDS.format(stamp)}, {ident} FROM {source} {order}"  # noqa: S608 - constant pieces


def _from_microseconds(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)


def _thread_row(row: tuple, participants: list[dict]) -> ThreadRow:
    return ThreadRow(
        id=row[0],
        subject=row[1],
        participants=participants,
        message_count=row[3],
        unread_count=row[4],
        starred_count=row[5],
        has_attachments=row[6],
        snippet=row[7],
        last_message_at=_from_microseconds(row[8]),
        label_ids=row[9],
    )


def _participants(page: list[tuple]) -> list[list[dict]]:
    """Each row's participants (JSON text from the driver): decoded in one call for the page, which
    costs a fraction of one call per row."""
    texts = [row[2] if isinstance(row[2], str) else json.dumps(row[2]) for row in page]
    return json.loads(f"[{','.join(texts)}]")


def thread_list(
    *, mailbox: Mailbox, view: ThreadListView, older_than: Cursor | None = None, newer_than: Cursor | None = None
) -> ThreadPage:
    """One page of a list, newest first, by keyset (never OFFSET) on the list's index:
    the page after ``older_than``, the page before ``newer_than``, or the newest page.
    One query; each row carries its labels' ids (``label_ids``)."""
    cursor_at = newer_than or older_than
    params = {
        "mailbox": mailbox.id,
        "label": view.label.id if view.label is not None else None,
        "stamp": cursor_at.last_message_at if cursor_at else None,
        "ident": cursor_at.thread_id if cursor_at else None,
    }
    page = fetch_prepared(_page_sql(_list_kind(view), older_than=older_than, newer_than=newer_than), params)
    if newer_than is not None:
        has_newer, page = len(page) > PAGE_SIZE, page[:PAGE_SIZE][::-1]
        has_older = bool(page)
    else:
        has_older, page = len(page) > PAGE_SIZE, page[:PAGE_SIZE]
        has_newer = older_than is not None and bool(page)
    return ThreadPage(
        threads=[_thread_row(row, people) for row, people in zip(page, _participants(page), strict=True)],
        older=Cursor(_from_microseconds(page[-1][-2]), page[-1][-1]) if has_older else None,
        newer=Cursor(_from_microseconds(page[0][-2]), page[0][-1]) if has_newer else None,
    )


# The rows either side of a thread in a list, on the list's keyset index: one index probe each way.
_NEIGHBOURS_SQL = """
WITH here AS (SELECT {stamp} AS stamp, {ident} AS ident FROM {source} AND {ident} = %(thread)s)
SELECT
    (SELECT {ident} FROM {source} AND ({stamp}, {ident}) > (SELECT stamp, ident FROM here)
     ORDER BY {stamp} ASC, {ident} ASC LIMIT 1),
    (SELECT {ident} FROM {source} AND ({stamp}, {ident}) < (SELECT stamp, ident FROM here)
     ORDER BY {stamp} DESC, {ident} DESC LIMIT 1)
"""


@dataclass(frozen=True)
class Neighbours:
    newer: int | None  # the thread above in the list (``k``), if any
    older: int | None  # the thread below (``j``)


def _list_kind(view: ThreadListView) -> str:
    """The list's SQL source in ``_LIST_SOURCES``: a user label's and Sent hide what is wholly in
    Spam or Trash."""
    if view.label is None:
        return view.kind
    return "label_hiding" if _hides_spam_and_trash(view.label) else "label"


def _hides_spam_and_trash(label: Label) -> bool:
    return not label.role or label.role == Label.Role.SENT


def thread_neighbours(*, mailbox: Mailbox, view: ThreadListView, thread_id: int) -> Neighbours:
    """The threads just newer and just older than ``thread_id`` in ``view``, by the list's keyset,
    in one query; none when the thread is not in the list. Search results have no stored order to
    step through: none either."""
    if view.kind == "search":
        return Neighbours(newer=None, older=None)
    source, (stamp, ident) = _LIST_SOURCES[_list_kind(view)]
    params = {"mailbox": mailbox.id, "label": view.label.id if view.label is not None else None, "thread": thread_id}
    with connection.cursor() as db:
        db.execute(_NEIGHBOURS_SQL.format(source=source, stamp=stamp, ident=ident), params)
        newer, older = db.fetchone()
    return Neighbours(newer=newer, older=older)


def thread_list_for_label(*, mailbox: Mailbox, label: Label, older_than: Cursor | None = None) -> ThreadPage:
    """One page of a label's threads, newest first, by keyset on the label's thread index."""
    return thread_list(mailbox=mailbox, view=ThreadListView(kind="label", label=label), older_than=older_than)


def thread_in_list(*, mailbox: Mailbox, view: ThreadListView, thread_id: int) -> Thread | None:
    """The mailbox's thread if it belongs in the list (for a live update of one row), else ``None``."""
    rows, _, ident = _list_rows(mailbox, view)
    row = rows.filter(**{ident: thread_id}).first()
    return (row.thread if view.label is not None else row) if row is not None else None


def threads_get_for_mailbox(*, mailbox: Mailbox, thread_ids: list[int]) -> list[Thread]:
    """The mailbox's threads among ``thread_ids``, newest first (ids of other mailboxes match nothing)."""
    rows = Thread.objects.filter(mailbox_id=mailbox.id, pk__in=thread_ids)
    return list(rows.order_by(F("last_message_at").desc(nulls_last=True), "-id"))


def thread_chips(*, mailbox: Mailbox, thread_ids: list[int]) -> dict[int, list[int]]:
    """The user labels (ids, in no order) on each of these threads, for the chips of their rows: one
    query. The view orders them as the sidebar does."""
    chips: dict[int, list[int]] = {}
    rows = ThreadLabel.objects.filter(mailbox=mailbox, thread_id__in=thread_ids, label__role="")
    for thread_id, label_id in rows.values_list("thread_id", "label_id"):
        chips.setdefault(thread_id, []).append(label_id)
    return chips


# Where a tab's live updates start, and where its next catch-up starts: a PostgreSQL snapshot (as
# PgQ batches its events), not an event id. Event ids are drawn at INSERT but become visible at
# COMMIT, in another order, so a cursor at the newest id seen would skip for good an event of lower
# id committed just after. A snapshot (``xmin:xmax:in-progress ids``) says exactly which
# transactions a read saw: each event records its transaction (``txid``, migration
# ``mailsite.0006``), and a catch-up returns the events of the transactions its cursor's snapshot
# did not see — committed since, or still running then — along with its own snapshot, taken by the
# same statement, as the next cursor. Nothing is skipped and nothing comes twice; only events heard
# over the socket may come again (a tab skips those, by event id).
_SNAPSHOT_SQL = "SELECT pg_current_snapshot()::text"


def live_cursor() -> str:
    """The snapshot (above) a page is rendered with: read before its rows, so whatever changes its
    rows might have missed comes back in its catch-up."""
    with connection.cursor() as db:
        db.execute(_SNAPSHOT_SQL)
        return db.fetchone()[0]


@dataclass(frozen=True)
class CatchUp:
    thread_ids: list[int]
    latest: str  # the cursor to catch up from next time (``live_cursor``)
    complete: bool  # False: too much happened; reload the page instead
    label_ids_deleted: list[int] = field(default_factory=list)
    label_ids_changed: list[int] = field(default_factory=list)  # created, renamed or recoloured
    thread_events: dict[int, list[int]] = field(default_factory=dict)  # thread id -> the event ids naming it


CATCH_UP_LIMIT = 500
# One statement, so the snapshot handed back is the one the events were read in. The index on
# (mailbox_id, txid) finds the transactions from the cursor's oldest running one on.
_CATCH_UP_SQL = """
SELECT now.snapshot, e.id, e.event_type, e.subject_type, e.subject_id, e.thread_id, e.source_tag
FROM (SELECT pg_current_snapshot()::text AS snapshot) now
LEFT JOIN LATERAL (
    SELECT id, event_type, subject_type, subject_id, source_tag,
        CASE WHEN jsonb_typeof(payload -> 'thread_id') = 'number' THEN (payload ->> 'thread_id')::bigint END
            AS thread_id
    FROM mailsite_domainevent
    WHERE mailbox_id = %(mailbox)s
        AND txid >= pg_snapshot_xmin(%(after)s::pg_snapshot)::text::bigint
        AND NOT pg_visible_in_snapshot(txid::text::xid8, %(after)s::pg_snapshot)
    ORDER BY id LIMIT %(limit)s
) e ON true
ORDER BY e.id
"""


def events_since(*, mailbox: Mailbox, after: str, tab: str = "") -> CatchUp:
    """The threads touched by the mailbox's domain events that the snapshot ``after`` (a cursor
    ``live_cursor`` or a previous catch-up handed out, checked by ``mailbox.live.live_cursor_clean``)
    did not see, for a tab that connects or reconnects. Changes made from ``tab`` itself
    (``mailbox.live``) name no thread: that tab already shows them."""
    with connection.cursor() as db:
        db.execute(_CATCH_UP_SQL, {"mailbox": mailbox.id, "after": after, "limit": CATCH_UP_LIMIT + 1})
        rows = db.fetchall()
    events = [row[1:] for row in rows if row[1] is not None]
    own = tab_source_tag(tab)
    by_thread: dict[int, list[int]] = {}
    by_message: dict[int, list[int]] = {}
    labels_deleted: set[int] = set()
    labels_changed: set[int] = set()
    for event_id, event_type, subject_type, subject_id, thread_id, source_tag in events[:CATCH_UP_LIMIT]:
        if own and source_tag == own:
            continue
        if thread_id is not None:
            by_thread.setdefault(thread_id, []).append(event_id)
        elif event_type == DomainEvent.Type.LABEL_DELETED:
            labels_deleted.add(subject_id)
        elif event_type == DomainEvent.Type.LABEL_CHANGED:
            labels_changed.add(subject_id)
        elif subject_type == "thread":
            by_thread.setdefault(subject_id, []).append(event_id)
        elif subject_type == "message":
            by_message.setdefault(subject_id, []).append(event_id)
    if by_message:
        pairs = Message.objects.filter(mailbox=mailbox, pk__in=by_message).values_list("id", "thread_id")
        for message_id, thread_id in pairs:
            by_thread.setdefault(thread_id, []).extend(by_message[message_id])
    return CatchUp(
        thread_ids=sorted(by_thread),
        latest=rows[0][0],
        complete=len(events) <= CATCH_UP_LIMIT,
        label_ids_deleted=sorted(labels_deleted),
        label_ids_changed=sorted(labels_changed - labels_deleted),
        thread_events={thread_id: sorted(ids) for thread_id, ids in sorted(by_thread.items())},
    )


# A label's unread threads are the count PostgreSQL keeps in ``mailbox_label.unread_threads`` as threads
# are written (migration ``0011_label_unread_threads``). A user label's count still includes its unread
# threads lying wholly in Spam or Trash (a trashed thread keeps its labels for Restore), which its list
# hides: subtracting them here cost every page 0.6 ms of database CPU with none to subtract, and 5 ms
# with 100 unread in Spam. Counting them right belongs in the triggers that keep the counts.


def label_unread_counts(*, mailbox: Mailbox) -> dict[int, int]:
    """Unread threads per label id (labels with none left out): the counts PostgreSQL keeps in
    ``mailbox_label.unread_threads`` as threads are written (migration ``0011_label_unread_threads``)."""
    with connection.cursor() as db:
        db.execute(
            "SELECT id, unread_threads FROM mailbox_label WHERE mailbox_id = %s AND unread_threads > 0", [mailbox.id]
        )
        return dict(db.fetchall())


def label_get_for_mailbox(*, mailbox: Mailbox, label_id: int) -> Label | None:
    return Label.objects.filter(mailbox=mailbox, pk=label_id).first()


def label_list(*, mailbox: Mailbox) -> list[Label]:
    return list(Label.objects.filter(mailbox=mailbox))


@dataclass(frozen=True)
class LabelOverview:
    """What every list page shows around its rows, read in one statement."""

    labels: list[Label]
    unread: dict[int, int]  # as ``label_unread_counts``
    live_cursor: str  # as ``live_cursor``


# Read before the rows: a change that lands in between is replayed by the page's catch-up. The
# last column is ``live_cursor``'s.
_OVERVIEW_SQL = """
SELECT l.id, l.mailbox_id, l.name, l.role, l.colour, l.position, l.unread_threads, pg_current_snapshot()::text
FROM mailbox_label l WHERE l.mailbox_id = %(mailbox)s ORDER BY l.position, l.name
"""


_OVERVIEW_FIELDS = ["id", "mailbox_id", "name", "role", "colour", "position"]


def label_overview(*, mailbox: Mailbox) -> LabelOverview:
    """The mailbox's labels (``label_list``), their unread counts and the live updates' cursor
    (``live_cursor``), in one query. The counts are exact: kept by PostgreSQL as threads are
    written (``label_unread_counts``)."""
    rows = fetch_prepared(_OVERVIEW_SQL, {"mailbox": mailbox.id})
    # Instances made from the columns directly: a raw queryset's column mapping cost more CPU
    # than the database's answer.
    labels = [Label.from_db(connection.alias, _OVERVIEW_FIELDS, row[:6]) for row in rows]
    return LabelOverview(
        labels=labels,
        unread={row[0]: row[6] for row in rows if row[6]},
        live_cursor=rows[0][7] if rows else live_cursor(),
    )


def mailboxes_for_addresses(*, addresses: list[str]) -> tuple[list[Mailbox], list[str]]:
    """The local mailboxes the addresses deliver to (primary or alias), and the addresses that are
    on one of our domains but match no mailbox. Foreign addresses are in neither list."""
    wanted = {a.strip().lower() for a in addresses if a.strip()}
    by_address = {m.address: m for m in Mailbox.objects.filter(address__in=wanted)}
    for alias in Alias.objects.filter(address__in=wanted - by_address.keys()).select_related("mailbox"):
        by_address[alias.address] = alias.mailbox
    unmatched = wanted - by_address.keys()
    local_domains = set(
        Domain.objects.filter(name__in={a.rpartition("@")[2] for a in unmatched}, is_active=True).values_list(
            "name", flat=True
        )
    )
    unknown = sorted(a for a in unmatched if a.rpartition("@")[2] in local_domains)
    mailboxes = list({m.id: m for m in by_address.values()}.values())
    return mailboxes, unknown
