"""Component logs of a site filled with known lines, for the Logs page tests."""

from __future__ import annotations

import json
import logging
import logging.handlers
import uuid

from fionagw.config import SiteConfig
from fionagw.ops.log import JsonLinesFormatter

OLD_LINES = [  # an earlier day of a cron job, written by hand with known times
    {
        "time": "2024-03-01T08:00:00.000",
        "level": "INFO",
        "component": "clearOldFiles",
        "pid": 7,
        "message": "study deleted",
        "study_uid": "1.2.3.old",
        "bytes": 1024,
    },
    {
        "time": "2024-03-01T09:30:00.000",
        "level": "ERROR",
        "component": "clearOldFiles",
        "pid": 7,
        "message": "tracker unreadable; nothing deleted",
    },
]


class ComponentLogs:
    """Real JSON-lines logs (fionagw.ops.log's formatter, rotating handler) for some components."""

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        self.loggers: dict[str, logging.Logger] = {}

    def __call__(self, component: str) -> logging.Logger:
        if component not in self.loggers:
            self.cfg.paths.logs.mkdir(parents=True, exist_ok=True)
            logger = logging.getLogger(f"test-web-logs.{uuid.uuid4().hex}.{component}")
            handler = logging.handlers.RotatingFileHandler(
                self.cfg.paths.logfile(component), maxBytes=10**7, backupCount=3, encoding="utf-8"
            )
            handler.setFormatter(JsonLinesFormatter(component))
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            self.loggers[component] = logger
        return self.loggers[component]

    def close(self) -> None:
        for logger in self.loggers.values():
            for h in list(logger.handlers):
                logger.removeHandler(h)
                h.close()


def fill_logs(cfg: SiteConfig) -> ComponentLogs:
    logs = ComponentLogs(cfg)
    logs("storescpd").info(
        "association accepted", extra={"calling": "MRI1", "study_uid": "1.2.840.1"}
    )
    logs("storescpd").warning("slow write", extra={"seconds": 2.5})
    logs("processSingleFile").debug("series classified", extra={"classify_type": ["T1"]})
    logs("processSingleFile").error("not DICOM; moved to broken/", extra={"file": "/x/broken.bin"})
    old = cfg.paths.logfile("clearOldFiles")
    old.write_text(
        "".join(json.dumps(e) + "\n" for e in OLD_LINES) + "Traceback (most recent call last):\n"
    )
    return logs
