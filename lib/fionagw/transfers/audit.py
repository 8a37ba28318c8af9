"""The audit log of what people did to transfer requests: ``logs/audit<SITE>.log``.

One JSON line per action, in the format of every other log (``time``, ``level``, ``component``
``audit``, ``pid``, ``message``) with ``user``, ``action``, ``request`` (the request file's
name), ``study_uid``, ``project`` and what else the action adds, so ``fiona logs audit`` and
the Logs page show it. Written straight to its file (appended, one ``write`` per line), not
through the process's logging setup, so it is the same file whichever process acts.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from fionagw.config import SiteConfig
from fionagw.ops.perms import FILE_MODE, make_dirs

COMPONENT = "audit"


def audit(cfg: SiteConfig, user: str, action: str, message: str, **fields: Any) -> None:
    """Append one audit line. ``fields`` must not hold a value from a DICOM file."""
    now = time.time()
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
        + f".{int(now * 1000) % 1000:03d}",
        "level": "INFO",
        "component": COMPONENT,
        "pid": os.getpid(),
        "message": message,
        "user": user,
        "action": action,
        **fields,
    }
    line = (json.dumps(entry, default=str, ensure_ascii=False) + "\n").encode("utf-8")
    path = cfg.paths.logfile(COMPONENT)
    make_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
