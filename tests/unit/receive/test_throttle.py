"""Warnings anyone who can connect can cause: one line per kind and interval (throttle.py)."""

from __future__ import annotations

import logging
import time

import pytest

from fionagw.receive.throttle import LogThrottle


def test_one_line_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("fionagw.test.throttle")
    throttle = LogThrottle(logger, interval=0.2)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for i in range(1000):
            throttle.warning("connection refused", {"peer": f"10.0.0.{i % 250}"})
        throttle.warning("handshake timeout", {"peer": "10.0.0.9"})
        throttle.flush()  # the interval is not over: nothing yet
        assert [r.getMessage() for r in caplog.records] == [
            "connection refused",
            "handshake timeout",
        ]
        assert caplog.records[0].peer == "10.0.0.0"
        time.sleep(0.25)
        throttle.flush()
        throttle.flush()  # written once
    messages = [r.getMessage() for r in caplog.records]
    assert messages[2:] == ["connection refused (999 times in 0 s, first peer shown)"]
    assert caplog.records[2].count == 999 and caplog.records[2].peer == "10.0.0.1"
