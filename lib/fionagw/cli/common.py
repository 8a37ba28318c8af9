"""What every FIONA program shares: --config, the SITE argument, one-line config errors."""

from __future__ import annotations

import argparse
import sys

from fionagw.config import ConfigError, SiteConfig, load_config


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
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


def load_or_exit(args: argparse.Namespace, prog: str) -> SiteConfig:
    try:
        return load_config(args.config, getattr(args, "site", "") or None)
    except ConfigError as exc:
        sys.exit(f"{prog}: config error: {exc}")


def fail_config(prog: str, exc: ConfigError) -> int:
    print(f"{prog}: config error: {exc}", file=sys.stderr)
    return 2


def launch(
    cfg: SiteConfig,
    program: str,
    component: str,
    serve,
    *,
    foreground: bool,  # type: ignore[no-untyped-def]
    announce: str,
) -> int:
    """Start ``serve(cfg, stop, ready)`` as a daemon, or in the foreground, with its own log."""
    from fionagw.ops import daemon
    from fionagw.ops.log import setup_logging

    def run(stop, ready):  # type: ignore[no-untyped-def]
        setup_logging(cfg, component, stderr=foreground)
        serve(cfg, stop, ready)

    pidfile = cfg.paths.pidfile(component)
    if foreground:
        return daemon.run_foreground(run, pidfile, program, announce)
    return daemon.start(
        run,
        pidfile,
        program,
        start_log=cfg.paths.logfile(f"{component}-start"),
        working_dir=cfg.datadir,
        announce=announce,
    )


def prepare_job(args: argparse.Namespace, prog: str):  # type: ignore[no-untyped-def]
    """A cron job's start: config, user and DATADIR checks (one-line error, exit 2), its log."""
    from fionagw.config import ConfigError, check_datadir, check_user
    from fionagw.ops.log import setup_logging

    cfg = load_or_exit(args, prog)
    try:
        check_user(cfg)
        check_datadir(cfg)
    except ConfigError as exc:
        sys.exit(fail_config(prog, exc))
    return cfg, setup_logging(cfg, prog)
