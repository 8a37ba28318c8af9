"""heartbeat (FIONA: heartbeat.sh, every minute): keep the receiver answering, end hung cron jobs.

1. Receiver. When its log or the archive changed in the last ``heartbeat.quiet_seconds`` (16 s)
   it is receiving (a C-ECHO in the middle of a transfer could clash), so nothing is done.
   Otherwise we C-ECHO our own SCP. Any answer (accept, reject, abort) means it is alive. No
   answer within ``echo_timeout_s``: SIGTERM, ``grace_seconds``, SIGKILL, and (unlike FIONA,
   which waited for the 10-minute cron) start it again at once.
2. Cron jobs. A job whose lock holder has run longer than its limit is killed the same way;
   the kernel then releases its flock, and the stale lock sidecar is removed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from fionagw.config import SiteConfig, receiver_enabled
from fionagw.ops import daemon, process
from fionagw.ops.locks import lock_info
from fionagw.paths import BIN_DIR

log = logging.getLogger("fionagw.heartbeat")

BIN = BIN_DIR
RECEIVER_PROGRAM = "storectl"
RECEIVER_COMPONENT = "storescpd"


@dataclass
class HeartbeatResult:
    receiver: str = ""  # busy | alive | restarted | down | disabled | stopped
    receiver_pid: int | None = None
    killed_jobs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"receiver {self.receiver}"]
        if self.killed_jobs:
            parts.append("killed " + ", ".join(self.killed_jobs))
        return "; ".join(parts + self.problems)


def receiver_busy(cfg: SiteConfig, now: float | None = None) -> bool:
    """The receiver log or the archive (or a study folder in it) changed recently."""
    now = time.time() if now is None else now
    horizon = now - cfg.heartbeat.quiet_seconds
    candidates = [cfg.paths.logfile(RECEIVER_COMPONENT), cfg.paths.archive]
    for p in candidates:
        try:
            if p.stat().st_mtime >= horizon:
                return True
        except OSError:
            pass
    try:
        with os.scandir(cfg.paths.archive) as it:
            for entry in it:
                try:
                    if (
                        entry.is_dir(follow_symlinks=False)
                        and entry.stat(follow_symlinks=False).st_mtime >= horizon
                    ):
                        return True
                except OSError:
                    continue
    except OSError:
        pass
    return False


def echo(cfg: SiteConfig, timeout: float | None = None) -> bool:
    """C-ECHO our own SCP. True when the SCP answered anything at all within ``timeout``."""
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    timeout = cfg.heartbeat.echo_timeout_s if timeout is None else timeout
    heard = []

    def on_open(event) -> None:  # type: ignore[no-untyped-def]
        try:
            event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (AttributeError, OSError):
            pass

    def on_pdu(event) -> None:  # type: ignore[no-untyped-def]
        heard.append(True)

    ae = AE(ae_title="FIONA-HEARTBEAT")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    tls_args = None
    rc = cfg.receiver
    if rc.tls_cert:
        import ssl

        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # our own SCP, by address
        if rc.tls_ca and rc.tls_key:
            ctx.load_cert_chain(str(rc.tls_cert), str(rc.tls_key))
        tls_args = (ctx, None)
    try:
        assoc = ae.associate(
            cfg.dicom_ip,
            cfg.dicom_port,
            ae_title=cfg.aetitle,
            tls_args=tls_args,  # type: ignore[arg-type]
            evt_handlers=[(evt.EVT_CONN_OPEN, on_open), (evt.EVT_PDU_RECV, on_pdu)],
        )
        if assoc.is_established:
            status = assoc.send_c_echo()
            assoc.release()
            return bool(status) or bool(heard)
        return bool(heard)  # rejected or aborted by the SCP: it answered
    except Exception as exc:  # noqa: BLE001 - any failure to talk is "no answer"
        log.debug("C-ECHO failed", extra={"error": str(exc)})
        return bool(heard)
    finally:
        ae.shutdown()


def terminate(pid: int, grace: float) -> str:
    """SIGTERM, wait ``grace`` s, SIGKILL. A stopped (SIGSTOP) process is continued so it can exit."""
    try:
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        return "gone"
    if process.wait_gone(pid, grace):
        return "terminated"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "terminated"
    process.wait_gone(pid, 10.0)
    return "killed"


def start_receiver(cfg: SiteConfig) -> tuple[bool, str]:
    """`storectl start` for this site (a separate program: the daemon must not inherit our state)."""
    cmd = [sys.executable, str(BIN / RECEIVER_PROGRAM), "--config", str(cfg.config_file), "start"]
    if cfg.site:
        cmd.append(cfg.site)
    try:
        r = subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def check_receiver(cfg: SiteConfig, result: HeartbeatResult) -> None:
    pidfile = cfg.paths.pidfile(RECEIVER_COMPONENT)
    if not receiver_enabled(cfg):
        result.receiver = "disabled"
        return
    if receiver_busy(cfg):
        result.receiver = "busy"
        return
    if echo(cfg):
        result.receiver = "alive"
        return
    pid = daemon.read_pid(pidfile, RECEIVER_PROGRAM)
    if pid is None and daemon.stopped_by_operator(pidfile) is not None:
        result.receiver = "stopped"  # by an operator (storectl stop): not a fault, no warning
        return
    if pid is None and not pidfile.exists():
        # Stopped on purpose (storectl stop removes the pidfile): the 10-minute cron starts it.
        result.receiver = "stopped"
        log.warning(
            "receiver does not answer C-ECHO and is not running", extra={"port": cfg.dicom_port}
        )
        return
    how = terminate(pid, cfg.heartbeat.grace_seconds) if pid is not None else "crashed"
    log.error(
        "receiver did not answer C-ECHO; stopped it",
        extra={
            "pid": pid,
            "how": how,
            "port": cfg.dicom_port,
            "timeout_s": cfg.heartbeat.echo_timeout_s,
        },
    )
    if pid is not None and how == "killed":
        try:
            pidfile.unlink()
        except FileNotFoundError:
            pass
    if os.environ.get("FIONA_SUPERVISOR"):  # under fiona run: its supervisor restarts the receiver
        result.receiver = "restarted"
        log.warning("receiver stopped; fiona run restarts it", extra={"old_pid": pid})
        return
    if not cfg.heartbeat.restart:
        result.receiver = "down"
        return
    ok, output = start_receiver(cfg)
    new = daemon.read_pid(pidfile, RECEIVER_PROGRAM)
    if ok and new is not None:
        result.receiver, result.receiver_pid = "restarted", new
        log.warning("receiver restarted", extra={"old_pid": pid, "pid": new})
    else:
        result.receiver = "down"
        result.problems.append(f"receiver restart failed: {output[-300:]}")
        log.error("receiver restart failed", extra={"output": output[-1000:]})


def held_jobs(cfg: SiteConfig) -> list[str]:
    """Names of this site's jobs whose lock sidecar exists (candidates for a holder)."""
    jobs = []
    for info in sorted(cfg.paths.pids.glob("*.lock.info")):
        try:
            data = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(data, dict)
            and data.get("site", "") == cfg.site
            and isinstance(data.get("job"), str)
        ):
            jobs.append(data["job"])
    return jobs


def check_jobs(cfg: SiteConfig, result: HeartbeatResult, *, skip: str = "heartbeat") -> None:
    for job in held_jobs(cfg):
        if job == skip:
            continue
        info = lock_info(cfg, job)  # None when the lock is in fact free (stale sidecar removed)
        if info is None or info.pid == os.getpid():
            continue
        limit = cfg.heartbeat.limit_for(job)
        age = info.age_s()
        if age <= limit or not info.alive():
            continue
        how = terminate(info.pid, cfg.heartbeat.grace_seconds)
        still = lock_info(cfg, job)
        log.error(
            "cron job ran longer than its limit; killed it",
            extra={
                "job": job,
                "pid": info.pid,
                "age_s": round(age),
                "limit_s": limit,
                "how": how,
                "lock_free": still is None,
            },
        )
        if still is None:
            result.killed_jobs.append(job)
        else:
            result.problems.append(f"{job}: lock still held by pid {still.pid}")


def run_heartbeat(cfg: SiteConfig) -> HeartbeatResult:
    result = HeartbeatResult()
    check_receiver(cfg, result)
    check_jobs(cfg, result)
    return result
