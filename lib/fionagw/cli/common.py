"""What every FIONA program shares: --config, the SITE argument, one-line config errors."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from fionagw.config import ConfigError, SiteConfig, check_datadir, check_user, load_config


def plain_help(text: str) -> str:
    """Help text from a docstring: reST's ``literal`` markup is for the source, not a terminal."""
    return re.sub(r"``(.+?)``", r"\1", text, flags=re.DOTALL)


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=plain_help(description))
    p.add_argument(
        "--config",
        metavar="PATH",
        help="config.json (default: $FIONA_CONFIG, else the checkout's config/config.json)",
    )
    return p


def add_site(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "site",
        nargs="?",
        default="",
        metavar="SITE",
        help="a site named in the config's SITES (default: the top-level settings)",
    )


CONFIG_ERROR_EXIT = 2
# A config that does not load at all ends storectl, processSingleFile and the cron jobs with
# exit 1, as it always has (sys.exit with the message); every other config problem exits 2.
UNLOADABLE_CONFIG_EXIT = 1


@contextmanager
def config_errors(prog: str, code: int = CONFIG_ERROR_EXIT) -> Iterator[None]:
    """A ConfigError in the block (or the decorated function) ends the program with one line,
    ``<prog>: config error: <file>: <key>: <problem>`` on stderr, and exit ``code``."""
    try:
        yield
    except ConfigError as exc:
        print(f"{prog}: config error: {exc}", file=sys.stderr)
        raise SystemExit(code) from None


def load_site(args: argparse.Namespace) -> SiteConfig:
    """The config named by --config (or the default) for the SITE argument, if any."""
    return load_config(args.config, getattr(args, "site", "") or None)


def load_or_exit(args: argparse.Namespace, prog: str) -> SiteConfig:
    """:func:`load_site` for the bin/ programs: a config that does not load exits 1."""
    with config_errors(prog, UNLOADABLE_CONFIG_EXIT):
        return load_site(args)


Serve = Callable[[SiteConfig, threading.Event, Callable[[], None]], None]


def launch(
    cfg: SiteConfig,
    program: str,
    component: str,
    serve: Serve,
    *,
    foreground: bool,
    announce: str,
) -> int:
    """Start ``serve(cfg, stop, ready)`` as a daemon, or in the foreground, with its own log."""
    from fionagw.ops import daemon
    from fionagw.ops.log import setup_logging

    def run(stop: threading.Event, ready: Callable[[], None]) -> None:
        cfg.log_warnings(setup_logging(cfg, component, stderr=foreground))
        serve(cfg, stop, ready)

    pidfile = cfg.paths.pidfile(component)
    if foreground:
        return daemon.run_foreground(run, pidfile, program, announce)
    supervisor = _supervisor_pid(cfg)
    if supervisor is not None:
        return _start_supervised(pidfile, program, supervisor, announce)
    return daemon.start(
        run,
        pidfile,
        program,
        start_log=cfg.paths.logfile(f"{component}-start"),
        working_dir=cfg.datadir,
        announce=announce,
    )


def held_by_operator(pidfile: Path, program: str) -> bool:
    """`keepalive` (the crontab's line) starts a daemon unless an operator stopped it: True, after
    saying so, when the stop marker is there (only `start` lifts it)."""
    from fionagw.ops import daemon

    since = daemon.stopped_by_operator(pidfile)
    if since is None:
        return False
    when = datetime.fromtimestamp(since).strftime("%Y-%m-%d %H:%M")
    print(f"{program}: stopped by an operator since {when}; not started (`{program} start` does)")
    return True


def stop_daemon(cfg: SiteConfig, pidfile: Path, program: str) -> int:
    """`stop`: the daemon stops and stays stopped (also under `fiona run`) until `start`."""
    from fionagw.ops import daemon

    rc = daemon.stop(pidfile, program)
    supervisor = _supervisor_pid(cfg)
    if supervisor is not None:
        print(f"{program}: fiona run (pid {supervisor}) keeps it stopped until `{program} start`")
    elif rc == 0:
        print(f"{program}: stays stopped until `{program} start` (cron's keepalive honours it)")
    return rc


SUPERVISED_START_TIMEOUT = 90.0  # a crashed child may be in its restart backoff (up to 60 s)


def _supervisor_pid(cfg: SiteConfig) -> int | None:
    from fionagw.ops.status import read_run_state

    run = read_run_state(cfg)
    return int(run["pid"]) if run is not None else None


def _start_supervised(pidfile: Path, program: str, supervisor: int, announce: str) -> int:
    """Under `fiona run` its supervisor owns the daemon: a start lifts the operator's stop and
    waits for the supervisor to start its child (a daemon of our own would run beside it)."""
    import time

    from fionagw.ops import daemon

    daemon.clear_stop(pidfile)
    if (pid := daemon.read_pid(pidfile, program)) is not None:
        print(f"{program}: already running (pid {pid}, supervised by fiona run)")
        return 0
    deadline = time.monotonic() + SUPERVISED_START_TIMEOUT
    while (pid := daemon.read_pid(pidfile, program)) is None:
        if time.monotonic() > deadline:
            print(
                f"{program}: fiona run (pid {supervisor}) did not start it within "
                f"{SUPERVISED_START_TIMEOUT:.0f} s; see `fiona logs fionaRun`",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.2)
    print(f"{program}: started by fiona run (pid {supervisor}) as pid {pid}. {announce}".rstrip())
    return 0


STATUS_NOT_RUNNING = 3  # the exit of `status` for a daemon that does not run (LSB's code)


def daemon_status(pidfile: Path, program: str, label: str, where: str) -> int:
    """`status` of a daemon: "running (pid, up) <where>" and 0, or "not running" and 3."""
    from fionagw.ops import daemon

    st = daemon.status(pidfile, program)
    if not st.running:
        print(f"{label}: not running")
        return STATUS_NOT_RUNNING
    print(f"{label}: running (pid {st.pid}, up {st.uptime_s or 0:.0f} s){where}")
    return 0


def job_parser(prog: str, description: str, verbose: str = "") -> argparse.ArgumentParser:
    """The arguments of a cron job: --config, SITE, and ``-v`` when ``verbose`` says what it
    prints."""
    p = parser(prog, description)
    add_site(p)
    if verbose:
        p.add_argument("-v", "--verbose", action="store_true", help=verbose)
    return p


@contextmanager
def cron_job(cfg: SiteConfig, prog: str) -> Iterator[Any]:
    """One run of a cron job: its non-blocking lock (a second copy exits 0) and the recorded
    outcome; the block sets ``.summary`` and ``.ok`` on what it yields."""
    from fionagw.ops.jobstate import job_run
    from fionagw.ops.locks import cron_lock

    with cron_lock(cfg, prog), job_run(cfg, prog) as run:
        yield run


def prepare_job(args: argparse.Namespace, prog: str) -> tuple[SiteConfig, logging.Logger]:
    """A cron job's start: config, user and DATADIR checks (one-line error, exit 2), its log."""
    from fionagw.ops.log import setup_logging

    cfg = load_or_exit(args, prog)
    with config_errors(prog):
        check_user(cfg)
        check_datadir(cfg)
    return cfg, setup_logging(cfg, prog)
