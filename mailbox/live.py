"""Which browser tab a change came from, so that tab can tell its own changes from other tabs'
when they come back to it (over its websocket, or in its catch-up from ``/events/``) and skip a
refetch that would show it nothing new.

A tab names itself with a random id: the ``X-Mailsite-Tab`` header on the requests that change
something, ``?tab=`` on its catch-up. The change's domain events carry it as their source tag
(``tab:<id>``) and its live events as ``"tab"``. It is not a credential: events stay scoped to the
mailbox, and a made-up id can only make the maker's own tabs skip a refresh.

Where a tab's catch-up starts is a PostgreSQL snapshot the server handed it (see
``mailbox.selectors.live_cursor``); ``live_cursor_clean`` checks one that comes back.
"""

import re

TAB_HEADER = "X-Mailsite-Tab"
_TAB_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
# ``xmin:xmax:xip,…``; the in-progress list is as long as the transactions then running.
_SNAPSHOT = re.compile(r"(\d{1,20}):(\d{1,20}):((?:\d{1,20}(?:,\d{1,20})*)?)")
_SNAPSHOT_MAX_LENGTH = 20_000


def tab_id_clean(value: str | None) -> str:
    """``value`` if it is a well-formed tab id, else "" (a change from no particular tab)."""
    return value if value and _TAB_ID.fullmatch(value) else ""


def tab_source_tag(tab: str) -> str:
    """The domain events' ``source_tag`` for a change made from ``tab`` ("" for none)."""
    return f"tab:{tab}" if tab else ""


def live_cursor_clean(value: str | None) -> str | None:
    """``value`` if PostgreSQL would read it as a snapshot (``pg_snapshot``: 0 < xmin <= xmax, the
    in-progress ids ascending within [xmin, xmax)), else ``None``."""
    match = _SNAPSHOT.fullmatch(value or "") if len(value or "") <= _SNAPSHOT_MAX_LENGTH else None
    if match is None:
        return None
    xmin, xmax = int(match[1]), int(match[2])
    running = [int(x) for x in match[3].split(",")] if match[3] else []
    if not 0 < xmin <= xmax < 2**63 or running != sorted(running) or any(not xmin <= x < xmax for x in running):
        return None
    return value
