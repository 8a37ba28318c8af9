"""`fiona run`: the whole gateway of one site in the foreground.

Children (supervised processes, see :mod:`fionagw.ops.supervisor`): processSingleFile and the
receiver, as their bin/ programs in ``foreground`` mode, and the web server. Services (threads
of this process): the scheduler of cron/fiona.crontab, the metrics endpoint, the heartbeat
POST. Everything that can be checked before starting is checked first, so that a second
gateway, a daemon already running or a port in use fails at once in one line.
"""

from __future__ import annotations

import logging
import os
import sys

from fionagw import __version__
from fionagw.config import ConfigError, SiteConfig, check_port_free
from fionagw.ops import crontab, daemon
from fionagw.ops.heartbeat_post import HeartbeatPoster
from fionagw.ops.jobstate import run_outcome
from fionagw.ops.log import console_handler, setup_logging
from fionagw.ops.metrics_server import MetricsServer
from fionagw.ops.schedule import ScheduleError, Scheduler, load_schedule, supervised_daemon_line
from fionagw.ops.status import DAEMONS, read_run_state, run_state_path
from fionagw.ops.supervisor import BIN, Child, Service, supervise
from fionagw.web.users import FIRST_ADMIN_HINT, UserStore

COMPONENT = "fionaRun"  # its log: DATADIR/logs/fionaRun<site>.log


class StartError(Exception):
    """The gateway cannot start for a reason other than the config; str() is one line."""


def run_gateway(cfg: SiteConfig) -> int:
    """Serve until SIGINT/SIGTERM; raises ConfigError or StartError when it cannot start."""
    _check_not_running(cfg)
    check_port_free(cfg)
    for _program, component in DAEMONS:  # `fiona run` is the operator's start of everything
        daemon.clear_stop(cfg.paths.pidfile(component))
    try:
        schedule = load_schedule(cfg.config_file, cfg.site)
    except (ScheduleError, OSError) as exc:
        raise StartError(f"cron/fiona.crontab: {exc}") from None
    log = setup_logging(cfg, COMPONENT)
    # failures (a child restarted, a job failed) show in the foreground too
    logging.getLogger().addHandler(console_handler(COMPONENT))
    cfg.log_warnings(log)

    children = _daemons(cfg)
    children += _mpps_child(cfg)
    web_url = _web_url(cfg)
    if web_url:
        children.append(Child("web", _command(cfg, "fiona", "web"), url=web_url))
    skip = supervised_daemon_line([*(p for p, _ in DAEMONS), "mppsctl"])
    # FIONA_SUPERVISOR tells a job that the daemons are ours (heartbeat must not start a second receiver)
    scheduler = Scheduler(
        schedule,
        skip=skip,
        env={"FIONA_SUPERVISOR": str(os.getpid())},
        outcome=lambda entry, started: run_outcome(cfg, entry.program, started),
    )
    services: list[Service] = [scheduler]
    extra: dict[str, dict[str, object]] = {}
    metrics_url = ""
    if cfg.metrics.enabled:
        server = _bound_metrics_server(cfg)
        metrics_url = server.url
        services.append(server)
        extra["metrics"] = {"pid": os.getpid(), "url": metrics_url}
    if cfg.heartbeat.post_url:
        services.append(HeartbeatPoster(cfg))

    _print_banner(cfg, web_url, metrics_url, len(scheduler.entries))
    log.info(
        "fiona run started",
        extra={
            "dicom": f"DICOM {cfg.aetitle}@{cfg.dicom_ip}:{cfg.dicom_port}",
            "web": web_url,
            "metrics": metrics_url,
            "cron_lines": len(scheduler.entries),
        },
    )
    rc = supervise(
        children,
        services=services,
        state_file=run_state_path(cfg),
        state_extra=extra,
        restart_file=cfg.paths.state_file("restart-request"),  # written by the Settings page
    )
    log.info("fiona run stopped")
    return rc


def _check_not_running(cfg: SiteConfig) -> None:
    """Neither another `fiona run` nor the daemons (started by `fiona start`) serve this site."""
    other = read_run_state(cfg)
    if other is not None:
        raise ConfigError(
            cfg.config_file, "", f"fiona run already runs for this site (pid {other['pid']})"
        )
    for program, component in DAEMONS:
        pid = daemon.read_pid(cfg.paths.pidfile(component), program)
        if pid is not None:
            raise ConfigError(
                cfg.config_file,
                "",
                f"{program} already runs as a daemon (pid {pid}); stop it with `fiona stop` first",
            )


def _command(cfg: SiteConfig, program: str, *args: str) -> list[str]:
    """A bin/ program of this site, run with our interpreter."""
    tail = [cfg.site] if cfg.site else []
    return [sys.executable, str(BIN / program), "--config", str(cfg.config_file), *args, *tail]


def _daemons(cfg: SiteConfig) -> list[Child]:
    """processSingleFile first (it reads the FIFO the receiver writes), then the receiver."""
    children = []
    for program, component in DAEMONS:
        children.append(
            Child(
                program,
                _command(cfg, program, "foreground"),
                pidfile=cfg.paths.pidfile(component),
                program=program,
                stop_argv=_command(cfg, program, "stop"),
            )
        )
    return children


def _mpps_child(cfg: SiteConfig) -> list[Child]:
    """The MPPS receiver when the site has it on (MPPSMODE, MPPSPORT, the enabled file)."""
    from fionagw.config.pacs import load_pacs, mpps_enabled

    if not mpps_enabled(cfg, load_pacs(cfg)):
        return []
    return [
        Child(
            "mppsctl",
            _command(cfg, "mppsctl", "foreground"),
            pidfile=cfg.paths.pidfile("mpps"),
            program="mppsctl",
            stop_argv=_command(cfg, "mppsctl", "stop"),
        )
    ]


def _web_url(cfg: SiteConfig) -> str:
    """Where the web server will serve; "" when the config switches it off."""
    return cfg.web.url if cfg.web.enabled else ""


def _bound_metrics_server(cfg: SiteConfig) -> MetricsServer:
    """The metrics endpoint with its port open (a port in use fails the start, not later)."""
    server = MetricsServer(cfg)
    try:
        server.bind()
    except OSError as exc:
        raise ConfigError(
            cfg.config_file,
            "metrics.port",
            f"{cfg.metrics.host}:{cfg.metrics.port} is not available: {exc.strerror}",
        ) from None
    return server


def _print_banner(cfg: SiteConfig, web_url: str, metrics_url: str, cron_lines: int) -> None:
    lines = [
        f"fionagw {__version__}: config {cfg.config_file}",
        f"  DATADIR       {cfg.datadir}",
        f"  DICOM         {cfg.aetitle} on {cfg.dicom_ip}:{cfg.dicom_port} (C-STORE, C-ECHO)",
    ]
    if web_url:
        lines.append(f"  web           {web_url}")
        if not UserStore.for_site(cfg).has_users():
            lines.append(f"                {FIRST_ADMIN_HINT}")
    if metrics_url:
        lines.append(f"  metrics       {metrics_url}")
    if cfg.heartbeat.post_url:
        lines.append(f"  heartbeat     POST every {cfg.heartbeat.post_interval_seconds} s")
    lines += [
        f"  cron jobs     {cron_lines} lines of {crontab.TEMPLATE}",
        f"  logs          {cfg.paths.logs} (fiona logs [-f] [COMPONENT])",
        "  stop with Ctrl-C",
    ]
    for line in lines:
        print(line, flush=True)
