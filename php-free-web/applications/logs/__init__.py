"""Logs: every component's JSON-lines log; filter, full-text search, live stream, downloads.

The filter is posted (it may hold any text a user searches for) and kept in the session, so
no search text ever appears in a URL; the downloads and the live stream use the same filter.
The search itself is ``fionagw.web.logsearch``."""

from .views import bp

__all__ = ["bp"]
