"""mppsctl start|stop|restart|keepalive|status|foreground [SITE]: the MPPS receiver (N-CREATE /
N-SET SCP on DICOMIP:MPPSPORT, records in DATADIR/scanner/). It runs when MPPSMODE is mppson
and MPPSPORT is set, unless the enabled file's second character is 0 (FIONA's switch)."""

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
from fionagw.config import ConfigError, check_datadir, check_user
from fionagw.ops import daemon

PROGRAM = "mppsctl"
COMPONENT = "mpps"


def main(argv: list[str]) -> int:
    from fionagw.config.pacs import load_pacs, mpps_enabled

    p = parser(PROGRAM, "Run the MPPS receiver (N-CREATE/N-SET SCP) of a site.")
    p.add_argument(
        "command", choices=["start", "stop", "restart", "keepalive", "status", "foreground"]
    )
    add_site(p)
    args = p.parse_args(argv)
    cfg = load_or_exit(args, PROGRAM)
    with config_errors(PROGRAM):
        settings = load_pacs(cfg)
    pidfile = cfg.paths.pidfile(COMPONENT)
    label = f"{PROGRAM}{' ' + cfg.site if cfg.site else ''}"
    port = settings.mpps.port

    if args.command == "status":
        return daemon_status(pidfile, PROGRAM, label, f" on {cfg.dicom_ip}:{port} as {cfg.aetitle}")
    if args.command == "stop":
        return stop_daemon(cfg, pidfile, PROGRAM)
    if args.command == "restart":
        daemon.stop(pidfile, PROGRAM)
    if args.command == "keepalive" and held_by_operator(pidfile, PROGRAM):
        return 0
    if not mpps_enabled(cfg, settings):
        why = (
            "MPPSMODE is not mppson or MPPSPORT is not set"
            if not settings.mpps.enabled
            else f"disabled by {cfg.paths.enabled_file} (second character 0)"
        )
        print(f"{label}: MPPS receiver off: {why}")
        return 0
    if daemon.read_pid(pidfile, PROGRAM) is None:
        from fionagw.ops.ports import port_available

        with config_errors(PROGRAM):
            check_user(cfg)
            check_datadir(cfg)
            problem = port_available(cfg.dicom_ip, port)
            if problem is not None:
                raise ConfigError(
                    cfg.config_file,
                    "MPPSPORT",
                    f"{cfg.dicom_ip}:{port} is not available: {problem}",
                )

    from fionagw.pacs.mpps import serve_mpps

    return launch(
        cfg,
        PROGRAM,
        COMPONENT,
        serve_mpps,
        foreground=args.command == "foreground",
        announce=f"MPPS receiver {cfg.aetitle} listening on {cfg.dicom_ip}:{port}",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
