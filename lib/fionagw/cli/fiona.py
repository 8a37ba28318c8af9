"""fiona: the umbrella CLI (run, start/stop/restart/status, logs, cron, check-config, version)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fionagw import __version__
from fionagw.cli.common import config_errors, load_site, parser
from fionagw.config import (
    ConfigError,
    check_datadir,
    check_port_free,
    check_user,
    config_path,
    load_config,
    read_json,
)
from fionagw.ops import daemon
from fionagw.ops.perms import datadir_warning

PROGRAM = "fiona"

# Subcommands that live in their own module: each has COMMAND, register(subparsers) and
# run(args) -> exit code.
PLUGIN_MODULES = (
    "fionagw.cli.fiona_deid",
    "fionagw.cli.fiona_user",
    "fionagw.cli.fiona_metrics",
    "fionagw.cli.fiona_web",
    "fionagw.cli.fiona_qc",
    "fionagw.cli.fiona_workflow",
    "fionagw.cli.fiona_notify",
    "fionagw.cli.fiona_group",
    "fionagw.cli.fiona_audit",
    "fionagw.cli.fiona_pacs",
    "fionagw.cli.fiona_export",
)


def _plugins() -> dict[str, object]:
    import importlib

    modules = [importlib.import_module(name) for name in PLUGIN_MODULES]
    return {module.COMMAND: module for module in modules}


def main(argv: list[str]) -> int:
    p = parser(PROGRAM, "Research DICOM gateway in the shape of FIONA.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="run the gateway in the foreground: daemons, web, the crontab's jobs, metrics"
    )
    run.add_argument("site", nargs="?", default="")
    check = sub.add_parser("check-config", help="validate config.json (every site) and the DATADIR")
    check.add_argument("site", nargs="?", default=None)
    sub.add_parser("version", help="print the version")
    for name, text in (
        ("start", "start both daemons (receiver and processSingleFile)"),
        ("stop", "stop both daemons"),
        ("restart", "restart both daemons"),
        ("status", "services, cron jobs, queues and disk use (exit 1 when a daemon is down)"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("site", nargs="?", default="")
    logs = sub.add_parser("logs", help="pretty-print the JSON-lines logs (all components, or one)")
    logs.add_argument(
        "component",
        nargs="?",
        default="",
        metavar="COMPONENT",
        help="e.g. storescpd, processSingleFile, heartbeat (default: all, merged by time)",
    )
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument(
        "-n", "--lines", type=int, default=50, help="lines to show first (default 50)"
    )
    logs.add_argument("--site", default="")
    cron = sub.add_parser("cron", help="the crontab of cron/fiona.crontab: install, show, remove")
    cron.add_argument("action", choices=["install", "show", "remove"])
    cron.add_argument(
        "--user", default=None, help="whose crontab (default: PROCESSING_USER, else yours)"
    )
    cron.add_argument("--site", default="")
    coupling = sub.add_parser(
        "coupling-list", help="coupling lists (accession number -> project, participant, event)"
    )
    coupling.add_argument("action", choices=["import", "show"])
    coupling.add_argument(
        "file", nargs="?", type=Path, help="CSV: AccessionNumber,ProjectName,subjectid,eventname"
    )
    coupling.add_argument("--site", default="")
    plugins = _plugins()
    for module in plugins.values():
        module.register(sub)  # type: ignore[attr-defined]
    args = p.parse_args(argv)

    if args.command in plugins:
        return plugins[args.command].run(args)  # type: ignore[attr-defined]

    if args.command == "version":
        print(f"fionagw {__version__}")
        return 0
    if args.command == "check-config":
        return check_config(args.config, args.site)
    if args.command == "run":
        return gateway(args)
    if args.command == "coupling-list":
        return coupling_list(args)
    if args.command in ("start", "stop", "restart", "status", "logs", "cron"):
        from fionagw.cli import fiona_ops

        with config_errors(PROGRAM):
            cfg = load_site(args)
        if args.command == "status":
            return fiona_ops.status(cfg)
        if args.command == "logs":
            return fiona_ops.logs(cfg, args.component, follow=args.follow, lines=args.lines)
        if args.command == "cron":
            return fiona_ops.cron(cfg, args.action, args.user)
        return fiona_ops.control(cfg, args.command)
    return 2


def check_config(path: str | None, site: str | None) -> int:
    from fionagw.classify import RulesError, RuleSet

    file = config_path(path)
    with config_errors(PROGRAM):
        data = read_json(file)
        sites = (
            [site]
            if site is not None
            else ["", *sorted((data.get("SITES") or {}) if isinstance(data, dict) else {})]
        )
        warned: set[str] = set()  # the top level's warnings come with every site: print once
        for name in sites:
            cfg = load_config(file, name or None)
            for warning in cfg.warnings:
                if str(warning) not in warned:
                    warned.add(str(warning))
                    print(f"{PROGRAM}: warning: {warning}", file=sys.stderr)
            check_user(cfg)
            check_datadir(cfg)
            if warning := datadir_warning(cfg.datadir):
                print(f"{PROGRAM}: {warning}", file=sys.stderr)
            running = daemon.read_pid(cfg.paths.pidfile("storescpd"), "storectl")
            if running is None:
                check_port_free(cfg)
            try:
                rules = RuleSet.load(cfg.classify_rules)
            except RulesError as exc:
                print(f"{PROGRAM}: {exc}", file=sys.stderr)
                return 2
            from fionagw.send import load_destinations

            destinations = load_destinations(cfg)  # validated by load_config; built to describe
            from fionagw.workflows.runtime import runtime_problem

            if problem := runtime_problem(cfg.workflows):
                print(f"{PROGRAM}: warning: {problem}", file=sys.stderr)
            from fionagw.deid.pixels import ocr_problem

            if problem := ocr_problem():  # burned-in text cannot be cleaned without it
                print(f"{PROGRAM}: warning: {problem}", file=sys.stderr)
            from fionagw.config.pacs import load_pacs

            pacs = load_pacs(cfg)  # read on demand by its programs: validated here too
            for pacs_warning in pacs.warnings:
                if str(pacs_warning) not in warned:
                    warned.add(str(pacs_warning))
                    print(f"{PROGRAM}: warning: {pacs_warning}", file=sys.stderr)
            import shutil

            from fionagw.export.settings import load_exports

            exports = load_exports(cfg)  # the exports section: validated here too
            if shutil.which(exports.dcm2niix) is None:
                print(f"{PROGRAM}: warning: NIFTI exports need {exports.dcm2niix}", file=sys.stderr)
            note = f" (receiver running, pid {running})" if running else ""
            print(
                f"{file}: site {name or '(default)'}: OK - DATADIR {cfg.datadir}, "
                f"{cfg.aetitle}@{cfg.dicom_ip}:{cfg.dicom_port}{note}, "
                f"{len(rules.resolved())} classification rules, destinations: "
                f"{', '.join(f'{n} ({d.describe()})' for n, d in destinations.items()) or 'none'}"
                f", workflow streams: {', '.join(cfg.workflows.streams) or 'none'}"
                f", PACS sources: {', '.join(pacs.sources) or 'none'}"
                f"{', MPPS on port ' + str(pacs.mpps.port) if pacs.mpps.enabled else ''}"
            )
    return 0


def coupling_list(args) -> int:  # type: ignore[no-untyped-def]
    from fionagw.config.projects import ProjectsError
    from fionagw.routing.coupling import CouplingListError, import_coupling_list
    from fionagw.tracking.base import TrackerError
    from fionagw.tracking.factory import open_tracker

    try:
        cfg = load_config(args.config, args.site or None)
        tracker = open_tracker(cfg)
        if args.action == "show":
            for e in tracker.coupling_entries():
                print(
                    ",".join(
                        (
                            e.cl_accessionnumber or e.cl_studyinstanceuid,
                            e.cl_projectname,
                            e.cl_subjectid,
                            e.cl_eventname,
                            e.cl_date,
                        )
                    )
                )
            return 0
        if args.file is None:
            print(f"{PROGRAM}: coupling-list import needs a FILE", file=sys.stderr)
            return 2
        n = import_coupling_list(tracker, args.file)
        from fionagw.admin import audit

        audit.record(cfg, "coupling-upload", "coupling-list", "coupling list imported", entries=n)
    except CouplingListError as exc:
        print(
            f"{PROGRAM}: {exc.source}: nothing imported; fix these lines and import again:",
            file=sys.stderr,
        )
        for err in exc.errors:
            print(f"  {err}", file=sys.stderr)
        return 1
    except (ConfigError, TrackerError, ProjectsError) as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 1
    print(f"{PROGRAM}: imported {n} coupling-list entries from {args.file}")
    return 0


@config_errors(PROGRAM)
def gateway(args: argparse.Namespace) -> int:
    """`fiona run`: the gateway in the foreground (see :mod:`fionagw.ops.gateway`)."""
    from fionagw.ops.gateway import StartError, run_gateway

    cfg = load_site(args)
    check_user(cfg)
    check_datadir(cfg)
    try:
        return run_gateway(cfg)
    except StartError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
