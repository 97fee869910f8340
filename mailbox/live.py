"""Which browser tab a change came from, so that tab can tell its own changes from other tabs'
when they come back to it (over its websocket, or in its catch-up from ``/events/``) and skip a
refetch that would show it nothing new.

A tab names itself with a random id: the ``X-Mailsite-Tab`` header on the requests that change
something, ``?tab=`` on its catch-up. The change's domain events carry it as their source tag
(``tab:<id>``) and its live events as ``"tab"``. It is not a credential: events stay scoped to the
mailbox, and a made-up id can only make the maker's own tabs skip a refresh.
"""

import re

TAB_HEADER = "X-Mailsite-Tab"
_TAB_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def tab_id_clean(value: str | None) -> str:
    """``value`` if it is a well-formed tab id, else "" (a change from no particular tab)."""
    return value if value and _TAB_ID.fullmatch(value) else ""


def tab_source_tag(tab: str) -> str:
    """The domain events' ``source_tag`` for a change made from ``tab`` ("" for none)."""
    return f"tab:{tab}" if tab else ""
