"""storectl start|stop|restart|keepalive|status|foreground [SITE]: the C-STORE/C-ECHO receiver
daemon. ``keepalive`` is the crontab's start: it leaves a daemon an operator stopped alone."""

from __future__ import annotations

import sys

from fionagw.cli.common import (
    add_site,
    config_errors,
    daemon_status,
    held_by_operator,
    launch,
    load_or_exit,
    parser,
    stop_daemon,
)
from fionagw.config import check_datadir, check_port_free, check_user, receiver_enabled
from fionagw.ops import daemon

PROGRAM = "storectl"
COMPONENT = "storescpd"


def main(argv: list[str]) -> int:
    p = parser(PROGRAM, "Run the DICOM receiver (C-STORE/C-ECHO SCP) of a site.")
    p.add_argument(
        "command", choices=["start", "stop", "restart", "keepalive", "status", "foreground"]
    )
    add_site(p)
    args = p.parse_args(argv)
    cfg = load_or_exit(args, PROGRAM)
    pidfile = cfg.paths.pidfile(COMPONENT)
    label = f"{PROGRAM}{' ' + cfg.site if cfg.site else ''}"

    if args.command == "status":
        where = f" on {cfg.dicom_ip}:{cfg.dicom_port} as {cfg.aetitle}"
        return daemon_status(pidfile, PROGRAM, label, where)
    if args.command == "stop":
        return stop_daemon(cfg, pidfile, PROGRAM)
    if args.command == "restart":
        daemon.stop(pidfile, PROGRAM)
    if args.command == "keepalive" and held_by_operator(pidfile, PROGRAM):
        return 0

    if not receiver_enabled(cfg):
        print(f"{label}: receiver disabled by {cfg.paths.enabled_file} (first character 0)")
        return 0
    if daemon.read_pid(pidfile, PROGRAM) is None:
        with config_errors(PROGRAM):
            check_user(cfg)
            check_datadir(cfg)
            check_port_free(cfg)

    from fionagw.receive.scp import serve_scp

    return launch(
        cfg,
        PROGRAM,
        COMPONENT,
        serve_scp,
        foreground=args.command == "foreground",
        announce=f"DICOM receiver {cfg.aetitle} listening on {cfg.dicom_ip}:{cfg.dicom_port}",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
