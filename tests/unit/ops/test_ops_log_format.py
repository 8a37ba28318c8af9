"""ops/log.py's formatting for people: `fiona logs` lines and `fiona run`'s console."""

from __future__ import annotations

import io
import json
import logging

from fionagw.ops.log import console_handler, format_entry


def test_entry_head_message_then_fields() -> None:
    line = json.dumps(
        {
            "time": "2030-01-01T00:00:00.000",
            "level": "ERROR",
            "component": "heartbeat",
            "pid": 7,
            "message": "receiver restarted",
            "old_pid": 5,
            "output": "two words",
        }
    )
    assert format_entry(line + "\n") == (
        '2030-01-01T00:00:00.000 ERROR   heartbeat[7] receiver restarted  old_pid=5 output="two words"'
    )


def test_lines_that_are_not_entries() -> None:
    assert format_entry("Traceback (most recent call last):", "web") == (
        "web: Traceback (most recent call last):"
    )
    assert format_entry("plain text") == "plain text"
    assert format_entry("[1, 2]", "web") == "[1, 2]"


def test_console_handler_shows_warnings_as_fiona_logs_prints_them(monkeypatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    handler = console_handler("fionaRun")
    logger = logging.getLogger("test-ops-log-format")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.info("not shown")
        logger.warning("child restarted", extra={"child": "storectl", "restarts": 2})
    finally:
        logger.removeHandler(handler)
    [line] = err.getvalue().splitlines()
    assert " WARNING fionaRun[" in line and line.endswith(
        "child restarted  child=storectl restarts=2"
    )
