"""service-down / service-up events: what the Status page would show red, as it changes.

Each sendNotifications run compares the site's status (ops/status.collect_status) with the
problems it saw last time (``DATADIR/notify/problems.json``) and emits ``service-down`` for
each new problem and ``service-up`` for each one gone: a daemon that should run and does not
(receiver, classifier), a cron job that has not finished a run for twice its interval plus a
minute (web/statusdata.freshness, the Status page's rule), free disk under retention's target.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fionagw.config import SiteConfig
from fionagw.notify.events import emit
from fionagw.ops.atomic import write_json_atomic
from fionagw.ops.perms import make_dirs

STATE_NAME = "problems.json"


def current_problems(cfg: SiteConfig, now: float | None = None) -> dict[str, str]:
    """{key: one line} of what is wrong now."""
    from fionagw.ops.status import collect_status
    from fionagw.web.statusdata import freshness, job_intervals

    clock = time.time() if now is None else now
    st = collect_status(cfg)
    problems = {f"service:{name}": f"{name} is down" for name in st.down}
    intervals = job_intervals()
    for j in st.jobs:
        finished = j.last.finished if j.last else None
        if finished is not None and freshness(finished, intervals.get(j.job), clock) == "stale":
            problems[f"cron:{j.job}"] = f"cron job {j.job} has not run for {clock - finished:.0f} s"
    d = st.disk
    if d is not None and not d.error and d.free_percent < d.target_free_percent:
        problems["disk"] = (
            f"DATADIR has {d.free_percent:.1f} % free, under the target {d.target_free_percent:g} %"
        )
    return problems


def watch(cfg: SiteConfig, now: float | None = None) -> tuple[int, int]:
    """Emit the changes since the last run; (problems new, problems gone)."""
    path = cfg.paths.notify / STATE_NAME
    try:
        before: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        before = {}
    now_problems = current_problems(cfg, now)
    new = [k for k in now_problems if k not in before]
    gone = [k for k in before if k not in now_problems]
    for key in new:
        emit(cfg, "service-down", what=key, problem=now_problems[key])
    for key in gone:
        emit(cfg, "service-up", what=key, was=str(before[key]))
    if new or gone or not path.exists():
        make_dirs(cfg.paths.notify)
        write_json_atomic(path, now_problems, durable=True)
    return len(new), len(gone)
