"""Warnings that anyone who can connect can cause, at most one line per kind and interval.

A refused address, an idle or garbage connection, a rejected calling AE title: each is worth
a line for the operator, but a peer opening thousands of such connections must not write
thousands of lines. The first occurrence is logged at once (with its peer); the ones that
follow within :data:`INTERVAL_S` are counted and reported in one line when it is over.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

INTERVAL_S = 10.0


class LogThrottle:
    """One warning line per message and interval; the rest counted (``suppressed``)."""

    def __init__(self, logger: logging.Logger, interval: float = INTERVAL_S) -> None:
        self.logger = logger
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # message -> when it was last written
        self._counts: dict[str, tuple[int, dict[str, Any]]] = {}  # held back since then

    def warning(self, message: str, extra: dict[str, Any]) -> None:
        """Log ``message`` (a fixed text: it is the key) now, or count it for later."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(message)
            if last is not None and now - last < self.interval:
                count, first = self._counts.get(message, (0, extra))
                self._counts[message] = (count + 1, first)
                return
            self._last[message] = now
        self.logger.warning(message, extra=extra)

    def flush(self) -> None:
        """Write the counts of the intervals that are over (called regularly)."""
        now = time.monotonic()
        due = []
        with self._lock:
            for message, (count, extra) in list(self._counts.items()):
                if now - self._last[message] >= self.interval:
                    del self._counts[message]
                    self._last[message] = now
                    due.append((message, count, extra))
        for message, count, extra in due:
            self.logger.warning(
                "%s (%d times in %.0f s, first peer shown)",
                message,
                count,
                self.interval,
                extra={**extra, "count": count},
            )
