"""What administration needs from ops: the supervisor restarts the children a request file
names, and log retention never prunes the audit trail."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from fionagw.admin import audit
from fionagw.config import load_config
from fionagw.ops.retention import clear_old_logs
from fionagw.ops.supervisor import Child, supervise
from support.site import wait_for, write_config


def test_a_restart_request_restarts_the_named_child_only(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    a, b = Child("storectl", sleeper), Child("web", sleeper)
    request = tmp_path / "restart-request.json"
    seen: dict[str, object] = {}

    def drive() -> None:  # supervise() must own the main thread (its signal handlers)
        try:
            wait_for(lambda: a.proc and b.proc, 30, "the children")
            first_a, first_b = a.proc.pid, b.proc.pid  # type: ignore[union-attr]
            request.write_text(json.dumps(["storectl"]))
            wait_for(
                # (a.proc is None for a moment while the child is restarted)
                lambda: not request.exists() and a.proc is not None and a.proc.pid != first_a,
                60,
                "the restart",
            )
            seen.update(
                alive=a.proc.poll() is None,  # type: ignore[union-attr]
                b_same=b.proc.pid == first_b,  # type: ignore[union-attr]
                restarts=a.restarts,
            )
        except Exception as exc:  # a failure in this thread is the test's failure
            seen["error"] = repr(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # supervise's handler ends its loop

    t = threading.Thread(target=drive)
    t.start()
    supervise([a, b], poll=0.05, grace=5, restart_file=request)
    t.join(30)
    # a requested restart is not a crash: no backoff count
    assert seen == {"alive": True, "b_same": True, "restarts": 0}
    assert a.proc.poll() is not None and b.proc.poll() is not None  # type: ignore[union-attr]


def test_log_retention_keeps_the_audit_trail(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, retention={"log_days": 1}))
    audit.record(cfg, "retry", "r-1", who="alice")
    other = cfg.paths.logfile("clearOldFiles")
    other.write_text("{}\n")
    past = time.time() - 10 * 86400
    for p in (audit.audit_file(cfg), other):
        os.utime(p, (past, past))
    gone = clear_old_logs(cfg)
    assert gone == [other] and audit.audit_file(cfg).exists()
    assert audit.verify(cfg) == (1, [])


def test_a_restart_made_outside_the_page_ends_the_prompt(tmp_path: Path) -> None:
    from fionagw.admin import settings

    cfg = load_config(write_config(tmp_path))
    settings._mark_restart_needed(cfg, ["processSingleFile", "storectl", "web"])
    marked = settings.restart_needed_file(cfg).stat().st_mtime
    assert settings.restart_needed(cfg) == ["processSingleFile", "storectl", "web"]
    pidfile = cfg.paths.pidfile("storescpd")  # the receiver started anew (fiona restart)
    pidfile.write_text("1\n")
    os.utime(pidfile, (marked + 5, marked + 5))
    assert settings.restart_needed(cfg) == ["processSingleFile", "web"]


def test_fiona_runs_own_services_wait_for_fiona_run_to_start_anew(tmp_path: Path) -> None:
    from fionagw.admin import settings
    from fionagw.ops.status import run_state_path

    cfg = load_config(write_config(tmp_path))
    settings._mark_restart_needed(cfg, ["fionaRun"])
    assert settings.restart_needed(cfg) == ["fionaRun"]
    assert "Nothing the page can restart" in settings.request_restart(cfg, ["fionaRun"], "admin")
    path = run_state_path(cfg)  # a fiona run (this process stands in for it) started since
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": os.getpid(), "children": {}}))
    assert settings.restart_needed(cfg) == []
