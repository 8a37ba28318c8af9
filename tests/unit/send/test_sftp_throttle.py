"""The sftp destination's bandwidth limit (``bandwidth_mb_s``): bytes pass no faster than it."""

from __future__ import annotations

import time

from fionagw.send.sftp import Throttle


def test_throttle_holds_the_rate() -> None:
    throttle = Throttle(4e6)  # 4 MB/s
    start = time.monotonic()
    for _ in range(8):
        throttle(250_000)  # 2 MB in all
    assert time.monotonic() - start >= 0.45


def test_no_limit_does_not_wait() -> None:
    throttle = Throttle(0)
    start = time.monotonic()
    for _ in range(1000):
        throttle(1 << 20)
    assert time.monotonic() - start < 0.1
