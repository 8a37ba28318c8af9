"""The receiver's SCP run in a thread of the test (serve_scp) and what it leaves in the site."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fionagw.config import SiteConfig, load_config
from fionagw.ops.log import JsonLinesFormatter
from fionagw.receive.scp import serve_scp
from support.site import read_log


@contextmanager
def running_scp(config: Path, durable: bool = True) -> Iterator[SiteConfig]:
    """serve_scp in a thread; its log records go to DATADIR/logs/storescpd.log as JSON."""
    cfg = load_config(config)
    cfg.paths.create()
    logger = logging.getLogger("fionagw")
    handler = logging.FileHandler(cfg.paths.logfile("storescpd"), encoding="utf-8")
    handler.setFormatter(JsonLinesFormatter("storescpd"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            serve_scp(cfg, stop, ready.set, durable=durable)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(15), "SCP did not come up"
    assert not errors, errors
    try:
        yield cfg
    finally:
        stop.set()
        thread.join(20)
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(old_level)
        assert not thread.is_alive(), "SCP did not stop"


def log_entries(cfg: SiteConfig) -> list[dict]:
    return read_log(cfg.paths.logfile("storescpd"))


def archived(cfg: SiteConfig) -> dict[str, Path]:
    """'scp_<Study>/<name>' -> path for every file in the archive."""
    return {
        str(p.relative_to(cfg.paths.archive)): p
        for p in cfg.paths.archive.rglob("*")
        if p.is_file()
    }


def temp_leftovers(cfg: SiteConfig) -> list[Path]:
    """Temp files holding data (the empty ones are the receiver's pool, made ahead of time)."""
    return [
        p
        for p in cfg.paths.temp.iterdir()
        if p.name.startswith(".scp-") and (not p.is_file() or p.stat().st_size > 0)
    ]
