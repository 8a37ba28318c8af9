"""The scheduler of `fiona run`: runs the jobs of cron/fiona.crontab as cron would.

The schedule is the crontab itself, rendered exactly as `fiona cron install` would install
it (paths, --config, SITE) and parsed here, so there is no second schedule to keep in step.
Supported: five fields as croniter reads them (``*``, lists, ranges, steps, month/day
names), the @hourly-style macros (@reboot runs once at start), ``NAME=value`` lines (added to the job environment),
FIONA's ``sleep N;`` prefix (an offset of N seconds into the minute) and output redirections
(ignored: the scheduler keeps the tail of each job's stderr for its own log). As in cron, when
both day-of-month and day-of-week are restricted, either one matching is enough.

Jobs run as child processes with the bare environment cron gives (HOME, LOGNAME, SHELL,
PATH=/usr/bin:/bin), each in its own process group so that stopping kills the whole job.
A line never runs twice at once: a line still running when it is due again is skipped
(and logged), as its job's own lock would make the second copy exit anyway.

A run is logged at INFO only when it did something (``outcome`` tells, from the job's own
record of the run), at DEBUG otherwise: idle jobs several times a minute would bury the log.
A failed run is a WARNING with the end of its output.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from croniter import croniter

from fionagw.ops import crontab

log = logging.getLogger("fionagw.scheduler")

CRON_PATH = "/usr/bin:/bin"  # Debian cron's default PATH
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_VARIABLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_SHELL_SYNTAX = re.compile(r"[;&|<>`$()*?\[\]{}~\\\n]")
_PROGRAM = re.compile(r"/bin/([A-Za-z][A-Za-z0-9]*)\b")


class ScheduleError(ValueError):
    """A crontab line that cannot be parsed: str() names the line number and the problem."""


_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")


def _bad_field(parts: list[str]) -> str:
    """Which of the five fields croniter refuses, for an error that names it."""
    for i, text in enumerate(parts):
        alone = ["*"] * 5
        alone[i] = text
        if not croniter.is_valid(" ".join(alone)):
            return f"{_FIELDS[i]} field {text!r} is not valid"
    return f"{' '.join(parts)!r} is not a valid schedule"


@dataclass(frozen=True)
class CronSpec:
    """Five cron time fields, evaluated by croniter (Vixie cron's rules: names, ranges, steps,
    0 and 7 both Sunday, day of month OR day of week when both are restricted)."""

    expr: str

    @classmethod
    def parse(cls, fields: str) -> CronSpec:
        parts = fields.split()
        if len(parts) != 5:
            raise ValueError(f"expected 5 time fields, got {len(parts)}")
        if not croniter.is_valid(" ".join(parts)):
            raise ValueError(_bad_field(parts))
        return cls(" ".join(parts))

    def matches(self, d: datetime) -> bool:
        return bool(croniter.match(self.expr, d.replace(second=0, microsecond=0)))

    def next_minute(self, after: datetime) -> datetime:
        """The first matching minute strictly after ``after`` (local, naive datetime)."""
        return croniter(self.expr, after).get_next(datetime)


@dataclass(frozen=True)
class ScheduleEntry:
    lineno: int
    line: str  # the crontab line as rendered
    spec: CronSpec | None  # None: @reboot (once, when `fiona run` starts)
    offset_s: int  # FIONA's "sleep N;" prefix
    command: str  # without the sleep prefix and the output redirection

    @property
    def program(self) -> str:
        """The bin/ program the line runs ("" when it is not one of ours)."""
        m = _PROGRAM.search(self.command)
        return m.group(1) if m else ""

    @property
    def label(self) -> str:
        extra = f" +{self.offset_s}s" if self.offset_s else ""
        return f"{self.program or self.command.split()[0]}{extra} (line {self.lineno})"

    def argv(self) -> list[str]:
        """How to run it: the words themselves when the command is simple, else through /bin/sh."""
        if not _SHELL_SYNTAX.search(self.command.replace("\\ ", "")):
            try:
                return shlex.split(self.command)
            except ValueError:
                pass
        return ["/bin/sh", "-c", self.command]

    def next_run(self, after: float) -> float:
        """Epoch seconds of the first run strictly after ``after``."""
        assert self.spec is not None
        # the current minute may still have its run ahead ("sleep 45;" at second 30)
        d = datetime.fromtimestamp(after - self.offset_s).replace(
            second=0, microsecond=0
        ) - timedelta(minutes=1)
        while True:
            d = self.spec.next_minute(d)
            when = d.timestamp() + self.offset_s
            if when > after:
                return when


@dataclass
class Schedule:
    entries: list[ScheduleEntry] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # NAME=value lines


def parse_crontab(text: str) -> Schedule:
    """Parse crontab text (already rendered: no @FIONA_HOME@ left, see :func:`load_schedule`)."""
    sched = Schedule()
    for lineno, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        var = _VARIABLE.match(s)
        if var and not s.startswith("@"):
            value = var.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            sched.env[var.group(1)] = value
            continue
        try:
            if s.startswith("@"):
                macro, _, command = s.partition(" ")
                if macro == "@reboot":
                    spec = None
                elif macro in _MACROS:
                    spec = CronSpec.parse(_MACROS[macro])
                else:
                    raise ValueError(f"unknown macro {macro}")
            else:
                parts = s.split(None, 5)
                if len(parts) < 6:
                    raise ValueError("expected five time fields and a command")
                spec = CronSpec.parse(" ".join(parts[:5]))
                command = parts[5]
        except ValueError as exc:
            raise ScheduleError(f"line {lineno}: {exc}: {s}") from None
        offset, command = crontab.split_command(command)
        if not command:
            raise ScheduleError(f"line {lineno}: no command: {s}")
        sched.entries.append(ScheduleEntry(lineno, s, spec, offset, command))
    return sched


def load_schedule(config_file: Path, site: str = "", template: Path | None = None) -> Schedule:
    """cron/fiona.crontab rendered for this checkout, config and site, then parsed."""
    text = crontab.render(config_file, site, template=template or crontab.TEMPLATE)
    return parse_crontab(text)


def cron_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment cron gives a job (Debian: HOME, LOGNAME, SHELL, PATH), plus crontab variables."""
    try:
        pw = pwd.getpwuid(os.geteuid())
        home, user = pw.pw_dir, pw.pw_name
    except KeyError:
        home, user = "/", str(os.geteuid())
    env = {"HOME": home, "LOGNAME": user, "USER": user, "SHELL": "/bin/sh", "PATH": CRON_PATH}
    # a checkout whose virtualenv lives elsewhere must reach it from a job too
    if os.environ.get("FIONA_VENV"):
        env["FIONA_VENV"] = os.environ["FIONA_VENV"]
    env.update(extra or {})
    return env


def _die_with_parent() -> None:
    """In the child: its own process group (stop kills the whole job) and SIGTERM if we die."""
    from fionagw.ops.supervisor import die_with_parent

    os.setpgid(0, 0)
    die_with_parent()


@dataclass
class _Running:
    entry: ScheduleEntry
    proc: subprocess.Popen
    started: float
    stderr: object  # temporary file with the job's output
    started_at: float = 0.0  # wall clock, to find the job's own record of this run


# (entry, wall-clock start) -> what the run did: (did something, summary), or None (unknown)
Outcome = Callable[[ScheduleEntry, float], "tuple[bool, str] | None"]


class Scheduler:
    """Runs due entries in a background thread until :meth:`stop`."""

    def __init__(
        self,
        schedule: Schedule,
        *,
        env: dict[str, str] | None = None,
        skip: Callable[[ScheduleEntry], bool] | None = None,
        tick: float = 0.5,
        grace: float = 10.0,
        clock: Callable[[], float] = time.time,
        outcome: Outcome | None = None,
    ) -> None:
        self.schedule = schedule
        self.outcome = outcome or (lambda e, started: None)
        self.env = cron_environment({**schedule.env, **(env or {})})
        self.skip = skip or (lambda e: False)
        self.tick, self.grace, self.clock = tick, grace, clock
        self.entries = [e for e in schedule.entries if not self.skip(e)]
        self.running: dict[int, _Running] = {}  # by line number
        self.runs = 0  # jobs started (for tests and the log)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------

    def start(self) -> None:
        for e in self.schedule.entries:
            if self.skip(e):
                log.info(
                    "crontab line skipped: `fiona run` supervises this daemon itself",
                    extra={"line": e.lineno, "command": e.command},
                )
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling, end running jobs (SIGTERM to each job's group, then SIGKILL)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            running = list(self.running.values())
        for r in running:
            _signal_group(r.proc, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for r in running:
            if not _wait_exited(r.proc, max(0.1, deadline - time.monotonic())):
                _signal_group(r.proc, signal.SIGKILL)
                _wait_exited(r.proc, 30)
            _signal_group(r.proc, signal.SIGKILL)  # anything the job left in its group
            r.proc.wait()
            self._finished(r, stopped=True)

    # -- the loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        now = self.clock()
        due: dict[int, float] = {}
        for e in self.entries:
            if e.spec is None:
                due[e.lineno] = now  # @reboot
            else:
                due[e.lineno] = e.next_run(now)
        by_line = {e.lineno: e for e in self.entries}
        while not self._stop.wait(self.tick):
            self._reap()
            now = self.clock()
            for lineno, when in list(due.items()):
                if now < when:
                    continue
                e = by_line[lineno]
                if now - when > 60:
                    # suspended or clock jumped: like cron, do not catch up on missed runs
                    log.warning(
                        "missed run skipped", extra={"job": e.label, "late_s": round(now - when)}
                    )
                else:
                    self._launch(e)
                if e.spec is None:
                    del due[lineno]
                else:
                    due[lineno] = e.next_run(max(now, when))
        self._reap()

    def _launch(self, e: ScheduleEntry) -> None:
        with self._lock:
            busy = self.running.get(e.lineno)
        if busy is not None:
            log.warning(
                "job still running from its last start; this run skipped",
                extra={
                    "job": e.label,
                    "pid": busy.proc.pid,
                    "running_s": round(time.monotonic() - busy.started),
                },
            )
            return
        out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _finished
        try:
            home = self.env.get("HOME", "/")
            proc = subprocess.Popen(
                e.argv(),
                env=self.env,
                cwd=home if os.path.isdir(home) else "/",
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                close_fds=True,
            )
        except OSError as exc:
            out.close()
            log.error("job could not be started", extra={"job": e.label, "error": str(exc)})
            return
        with self._lock:
            self.running[e.lineno] = _Running(e, proc, time.monotonic(), out, time.time())
            self.runs += 1
        log.debug("job started", extra={"job": e.label, "pid": proc.pid})

    def _reap(self) -> None:
        with self._lock:
            done = [r for r in self.running.values() if _wait_exited(r.proc, 0)]
        for r in done:
            _signal_group(r.proc, signal.SIGKILL)  # nothing of a finished job may linger
            r.proc.wait()
            self._finished(r)

    def _finished(self, r: _Running, stopped: bool = False) -> None:
        with self._lock:
            if self.running.get(r.entry.lineno) is not r:
                return
            del self.running[r.entry.lineno]
        rc = r.proc.returncode
        seconds = round(time.monotonic() - r.started, 3)
        tail = _tail(r.stderr)  # type: ignore[arg-type]
        extra = {"job": r.entry.label, "pid": r.proc.pid, "exit_code": rc, "seconds": seconds}
        if stopped:
            log.info("job stopped (fiona run is stopping)", extra=extra)
        elif rc == 0:
            outcome = self.outcome(r.entry, r.started_at)
            if outcome is not None and outcome[0]:
                log.info("job finished", extra={**extra, "summary": outcome[1]})
            else:
                log.debug("job finished", extra=extra)
        else:
            log.warning("job failed", extra={**extra, "output": tail})

    def status(self) -> list[dict[str, object]]:
        with self._lock:
            return [{"job": r.entry.label, "pid": r.proc.pid} for r in self.running.values()]


def _wait_exited(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait until the job's leader has exited, without reaping it: while it is a zombie its pid
    (= its process group id) cannot be reused, so signalling the group cannot hit a stranger."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True  # reaped already
        if info is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    if proc.returncode is not None:
        return  # reaped: its pid may belong to someone else now
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(f: object, limit: int = 2000) -> str:
    """The last lines of a job's output (its one-line error, typically)."""
    try:
        f.seek(0, os.SEEK_END)  # type: ignore[attr-defined]
        size = f.tell()  # type: ignore[attr-defined]
        f.seek(max(0, size - limit))  # type: ignore[attr-defined]
        text = f.read().decode("utf-8", errors="replace")  # type: ignore[attr-defined]
    except (OSError, ValueError):
        text = ""
    finally:
        try:
            f.close()  # type: ignore[attr-defined]
        except OSError:
            pass
    return " | ".join(line for line in text.strip().splitlines()[-3:])


def supervised_daemon_line(daemons: Iterable[str]) -> Callable[[ScheduleEntry], bool]:
    """A skip rule for `fiona run`: crontab lines that start a daemon the supervisor runs itself."""
    names = set(daemons)

    def skip(e: ScheduleEntry) -> bool:
        words = e.command.split()
        return e.program in names and bool({"start", "keepalive"} & set(words))

    return skip
