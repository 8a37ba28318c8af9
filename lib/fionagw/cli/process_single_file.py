"""processSingleFile start|stop|status|foreground|rebuild|test [FILE]|send PATH [SITE]."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fionagw.classify import NotDicomError
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
from fionagw.config import check_datadir, check_user
from fionagw.ops import daemon
from fionagw.ops.log import setup_logging
from fionagw.ops.log_filter import safe_exception_text

PROGRAM = "processSingleFile"
COMPONENT = "processSingleFile"


def main(argv: list[str]) -> int:
    p = parser(PROGRAM, "Classify received files into raw/ (the FIFO daemon of a site).")
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (
        ("start", "start the daemon"),
        ("stop", "stop the daemon"),
        ("restart", "restart the daemon"),
        ("keepalive", "start the daemon unless an operator stopped it (the crontab's line)"),
        ("status", "is the daemon running (exit 3 if not)"),
        ("foreground", "run in the foreground until SIGTERM/Ctrl-C"),
        ("rebuild", "derive raw/, participants/, srs/ and series JSON anew from the archive"),
    ):
        add_site(sub.add_parser(name, help=text))
    test = sub.add_parser(
        "test",
        help="classify FILE and print its series JSON and ClassifyType (writes nothing); "
        "without FILE, print the resolved classification rules",
        description="Classify one DICOM file with the site's classifyRules.json (or the "
        "embedded defaults) and print the series JSON it would make, then its ClassifyType. "
        "Nothing is written to DATADIR, so rules can be tried on a copy of the site's config. "
        "Without FILE, print the rules as resolved.",
    )
    test.add_argument(
        "targets",
        nargs="*",
        metavar="FILE|SITE",
        help="a DICOM file and/or a site named in the config's SITES (at most one of each)",
    )
    send = sub.add_parser("send", help="queue files (or folders) for processing")
    send.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    send.add_argument("--site", default="")
    args = p.parse_args(argv)
    if args.command == "test":
        return _test(args, p)
    cfg = load_or_exit(args, PROGRAM)
    pidfile = cfg.paths.pidfile(COMPONENT)

    if args.command == "status":
        return daemon_status(pidfile, PROGRAM, PROGRAM, f", fifo {cfg.paths.fifo}")
    if args.command == "stop":
        return stop_daemon(cfg, pidfile, PROGRAM)
    if args.command == "send":
        return _send(cfg, args.paths)

    with config_errors(PROGRAM):
        check_user(cfg)
        check_datadir(cfg)
    if args.command == "rebuild":
        from fionagw.organize.processor import WriterLockHeld
        from fionagw.organize.rebuild import rebuild

        setup_logging(cfg, COMPONENT, stderr=True)
        try:
            ok, bad = rebuild(cfg)
        except WriterLockHeld as exc:
            print(f"{PROGRAM}: {exc}", file=sys.stderr)
            return 1
        print(f"{PROGRAM}: rebuilt from the archive: {ok} files filed, {bad} moved aside or failed")
        return 0 if bad == 0 else 1
    if args.command == "restart":
        daemon.stop(pidfile, PROGRAM)
    if args.command == "keepalive" and held_by_operator(pidfile, PROGRAM):
        return 0

    from fionagw.classify import RulesError, RuleSet
    from fionagw.organize.processor import serve_processor

    try:
        RuleSet.load(cfg.classify_rules)  # fail here, with the rule named, not inside the daemon
    except RulesError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 2

    return launch(
        cfg,
        PROGRAM,
        COMPONENT,
        serve_processor,
        foreground=args.command == "foreground",
        announce=f"processSingleFile reading {cfg.paths.fifo}",
    )


def _test(args: argparse.Namespace, p: argparse.ArgumentParser) -> int:
    """``test [FILE] [SITE]``: an argument that names an existing file (or looks like a path)
    is the file, anything else the site."""
    from fionagw.classify import RulesError, RuleSet, classify_file
    from fionagw.ops.log import quiet_pydicom

    quiet_pydicom()  # pydicom's warnings quote values ("Invalid value for VR UI: '...'")

    files = [t for t in args.targets if Path(t).exists() or "/" in t or t.endswith(".dcm")]
    sites = [t for t in args.targets if t not in files]
    if len(files) > 1 or len(sites) > 1:
        p.error("test takes at most one FILE and one SITE")
    args.site = sites[0] if sites else ""
    cfg = load_or_exit(args, PROGRAM)
    try:
        rules = RuleSet.load(cfg.classify_rules)
    except RulesError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 2
    if not files:
        print(json.dumps(rules.resolved(), indent=2))
        return 0
    try:
        record = classify_file(Path(files[0]), rules)
    except OSError as exc:
        print(f"{PROGRAM}: {files[0]}: cannot read: {exc.strerror}", file=sys.stderr)
        return 1
    except NotDicomError as exc:
        print(f"{PROGRAM}: {files[0]}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # what the daemon would move to broken/: one line, no traceback
        print(
            f"{PROGRAM}: {files[0]}: the classifier cannot handle it: {safe_exception_text(exc)}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(record, indent=2, ensure_ascii=False))
    print(f"ClassifyType: {', '.join(record.get('ClassifyType') or []) or '(none)'}")
    return 0


def _send(cfg, paths: list[Path]) -> int:  # type: ignore[no-untyped-def]
    from fionagw.organize.processor import send_to_fifo

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            print(f"{PROGRAM}: {p}: no such file or folder", file=sys.stderr)
            return 1
    try:
        for f in files:
            send_to_fifo(cfg, str(f.resolve()))
    except OSError as exc:
        print(
            f"{PROGRAM}: cannot write to {cfg.paths.fifo} ({exc.strerror}); is processSingleFile running?",
            file=sys.stderr,
        )
        return 1
    print(f"{PROGRAM}: queued {len(files)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
