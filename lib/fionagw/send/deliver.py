"""sendFiles: deliver the packages in the outboxes of the sftp and https destinations.

For each package whose retry time has come (oldest first; ``parallel`` at once per
destination):

1. the .md5sum is checked against the archive and written anew if missing or wrong (FIONA's
   repair);
2. the destination puts each file at the remote site under a temporary name, verifies it
   (size and checksum) and renames it into place (sftp.py, https.py);
3. the package moves to ``sent/`` and the transfer's tracker record gets FIONA's fields:
   transfer_date, transfer_error (___2 cleared), transfers_complete 2.

A failed attempt keeps the package in the outbox with its attempt count and next try in
``<stem>.state`` (backoff: config.json ``sending``, as anonymizeAndSend) and marks the
transfer with transfer_error___2 and the reason; after ``sending.max_attempts`` the package
moves to ``failed/`` and the request gets a failure record in transfers_fail/ (reason
``send``) saying why. A package in the outbox for more than STUCK_DAYS is reported on every
run. Crash safety: a package leaves the outbox only after its delivery was verified, and a
file already whole under its final name is not sent again, so a crash at any point means at
most one more verification, never a second copy.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fionagw import notify
from fionagw.config import ConfigError, SiteConfig
from fionagw.send.base import SendError, load_destinations, load_sending
from fionagw.send.package import Package, PackageDestination, packages, repair_md5sum
from fionagw.tracking.base import Tracker, TrackerError
from fionagw.tracking.records import (
    COMPLETE_ERROR,
    COMPLETE_OK,
    ERROR_SEND,
    PIXELS_ANONYMIZED,
    now_text,
)
from fionagw.transfers.failures import FailureRecord, write_record

log = logging.getLogger("fionagw.sendFiles")

STUCK_DAYS = 2.0


@dataclass
class Report:
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    waiting: int = 0
    stuck: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.sent)} sent"] if self.sent else []
        if self.failed:
            parts.append(f"{len(self.failed)} failed (moved to failed/)")
        if self.deferred:
            parts.append(f"{len(self.deferred)} to retry")
        if self.waiting:
            parts.append(f"{self.waiting} waiting for their retry time")
        if self.repaired:
            parts.append(f"{len(self.repaired)} .md5sum recomputed")
        if self.stuck:
            parts.append(
                f"{len(self.stuck)} in the outbox for over {STUCK_DAYS:g} days: "
                + ", ".join(self.stuck[:5])
            )
        return ", ".join(parts)


def send_files(cfg: SiteConfig, tracker: Tracker, now: float | None = None) -> Report:
    report = Report()
    now = now if now is not None else time.time()
    for dest in load_destinations(cfg).values():
        if not isinstance(dest, PackageDestination):
            continue
        due = []
        for pkg in packages(dest.outbox):
            if pkg.age_s(now) > STUCK_DAYS * 86400:
                report.stuck.append(pkg.stem)
                log.warning(
                    "package stuck in the outbox",
                    extra={
                        "destination": dest.name,
                        "package": pkg.stem,
                        "days": round(pkg.age_s(now) / 86400, 1),
                    },
                )
            if float(pkg.read_state().get("next_try") or 0) > now:
                report.waiting += 1
            else:
                due.append(pkg)
        # the network part runs in parallel; the tracker (one connection) is written here
        with ThreadPoolExecutor(max_workers=dest.parallel) as pool:
            attempts = list(pool.map(_attempt, [dest] * len(due), due, [report] * len(due)))
        for pkg, (what, error, seconds, md5) in zip(due, attempts, strict=True):
            if error:
                outcome = _failed(cfg, tracker, dest, pkg, pkg.read_state(), error)
            elif _rewritten(pkg, md5):
                # anonymizeAndSend wrote the package anew (a resend) while it was sent: the
                # new one stays in the outbox for the next run
                log.warning(
                    "package rewritten while it was sent: sent again next run",
                    extra={"destination": dest.name, "package": pkg.stem},
                )
                outcome = "deferred"
            else:
                outcome = _delivered(cfg, tracker, dest, pkg, what, seconds)
            getattr(report, outcome).append(pkg.stem)
    return report


def _rewritten(pkg: Package, md5: str) -> bool:
    """Is the package in the outbox no longer the one just delivered (manifest gone while a new
    one is written, or naming another archive)?"""
    try:
        manifest = json.loads(pkg.manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False  # unreadable: the delivery verified the archive itself
    recorded = manifest.get("archive", {}).get("md5") if isinstance(manifest, dict) else None
    return bool(recorded) and recorded != md5


def _attempt(dest: PackageDestination, pkg: Package, report: Report) -> tuple[str, str, float, str]:
    """(what was done, error, seconds, the archive's MD5) of one delivery attempt."""
    start = time.monotonic()
    extra = {"destination": dest.name, "package": pkg.stem}
    try:
        md5, repaired = repair_md5sum(pkg)
        if repaired:
            report.repaired.append(pkg.stem)
            log.warning(".md5sum missing or wrong: recomputed", extra=extra)
        what = dest.deliver(pkg, md5, lambda m: log.info(m, extra=extra))
    except (SendError, ConfigError) as exc:  # ConfigError: a secret file (mode, missing)
        return "", str(exc), time.monotonic() - start, ""
    except OSError as exc:
        return "", f"local package: {exc.strerror or exc}", time.monotonic() - start, ""
    return what, "", time.monotonic() - start, md5


def _delivered(
    cfg: SiteConfig,
    tracker: Tracker,
    dest: PackageDestination,
    pkg: Package,
    what: str,
    seconds: float,
) -> str:
    extra = {"destination": dest.name, "package": pkg.stem}
    size = pkg.archive.stat().st_size
    log.info(
        "package delivered",
        extra={
            **extra,
            "result": what,
            "seconds": round(seconds, 2),
            "mb_s": round(size / 1e6 / max(seconds, 1e-6), 1),
        },
    )

    def delivered(t: Any) -> None:
        t.transfer_date = now_text()
        t.transfer_error = t.transfer_error - {ERROR_SEND}
        t.transfer_error_message = ""
        t.transfers_complete = (
            COMPLETE_ERROR if t.transfer_error - {PIXELS_ANONYMIZED} else COMPLETE_OK
        )

    if not _update_tracker(tracker, pkg.read_state(), delivered, extra):
        # delivered, not recorded: stays in the outbox; the next run finds it whole there
        # (verified, not sent again) and records it then
        return "deferred"
    notify.emit_package(cfg, "send-succeeded", pkg.read_state(), package="delivered")
    pkg.move_to(cfg.paths.packages(dest.name, "sent"))
    return "sent"


def _failed(
    cfg: SiteConfig,
    tracker: Tracker,
    dest: PackageDestination,
    pkg: Package,
    state: dict[str, Any],
    error: str,
) -> str:
    sending = load_sending(cfg)
    attempts = int(state.get("attempts") or 0) + 1
    final = attempts >= sending.max_attempts
    if final:
        error += f" (attempt {attempts} of {sending.max_attempts}; giving up)"
    else:
        delay = sending.delay(attempts)
        error += f" (attempt {attempts} of {sending.max_attempts}; next try in {delay:.0f} s)"
        state["next_try"] = time.time() + delay
    state.update(attempts=attempts, error=error)
    extra = {"destination": dest.name, "package": pkg.stem, "error": error}
    log.error("package not delivered", extra=extra)
    pkg.write_state(state)
    request = state.get("request") or {}
    message = json.dumps(
        {
            "request": request.get("row"),
            "destination": dest.name,
            "package": pkg.stem,
            "error": error,
        },
        sort_keys=True,
    )

    def not_delivered(t: Any) -> None:
        t.transfer_error = t.transfer_error | {ERROR_SEND}
        t.transfer_error_message = message
        t.transfers_complete = COMPLETE_ERROR

    _update_tracker(tracker, state, not_delivered, extra)
    if not final:
        return "deferred"
    pkg.move_to(cfg.paths.packages(dest.name, "failed"))
    notify.emit_package(cfg, "send-failed", state, reason="send", package="failed")
    if request.get("name"):
        write_record(
            cfg.paths,
            FailureRecord(
                request["name"],
                request.get("row"),
                error,
                "send",
                permanent=False,
                attempts=attempts,
                failed_at=time.time(),
            ),
        )
    return "failed"


def _update_tracker(
    tracker: Tracker, state: dict[str, Any], change: Any, extra: dict[str, Any]
) -> bool:
    """Apply ``change`` to the transfer the package came from (none: nothing to record)."""
    row = (state.get("request") or {}).get("row")
    if not isinstance(row, dict):
        return True
    try:
        for t in tracker.transfers(str(row.get("study_instance_uid", ""))):
            if t.instance == int(row.get("redcap_repeat_instance") or 0):
                change(t)
                tracker.update_transfer(t)
                return True
    except (TrackerError, ValueError) as exc:
        log.error("tracker update failed", extra={**extra, "error": str(exc)})
        return False
    log.warning("transfer no longer in the tracker", extra=extra)
    return True


def retry_failed(cfg: SiteConfig, destination: str, stem: str) -> str:
    """Move a failed package back into the outbox with a fresh attempt count (operator)."""
    pkg = Package(cfg.paths.packages(destination, "failed"), stem)
    if not pkg.manifest.exists():
        # an OSError: the job reports it in one line and exits 1
        raise FileNotFoundError(f"no failed package {stem!r} of destination {destination!r}")
    moved = pkg.move_to(cfg.paths.packages(destination))
    state = moved.read_state()
    state.update(attempts=0, next_try=0.0, error="")
    moved.write_state(state)
    return f"{stem}: back in the outbox of {destination}"
