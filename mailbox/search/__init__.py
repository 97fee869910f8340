"""Full-text search with Gmail-style operators: documents written at delivery, queries parsed here."""

from mailbox.search.query import SearchQueryError, parse_query
from mailbox.search.selectors import thread_search

__all__ = ["SearchQueryError", "parse_query", "thread_search"]
