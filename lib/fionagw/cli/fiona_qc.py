"""`fiona qc run|show|bypass`: quality control of a study on the command line.

``run STUDY [--project P]`` checks the study now and prints each check (exit 1 when a check
failed); ``run --nifti DIR`` checks a NIfTI bundle folder; ``show STUDY --format F`` writes
the study's report (txt, json, html, pdf) to stdout or ``--output``; ``bypass STUDY
--project P --user NAME --reason TEXT [--check C]`` lets failed checks pass for the project:
NAME must be a web account with the admin role on P, and its password is asked (or read
from stdin with ``--password-stdin``), as the web page would.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from fionagw.cli.common import config_errors, load_site
from fionagw.config.qc import CHECKS

PROGRAM = "fiona qc"
COMMAND = "qc"


def register(sub: Any) -> None:
    p = sub.add_parser(COMMAND, help="quality control: run the checks, show the report, bypass")
    p.add_argument("--site", default="")
    acts = p.add_subparsers(dest="action", required=True)
    a = acts.add_parser("run", help="check a study now (or a NIfTI bundle with --nifti)")
    a.add_argument("study", nargs="?", default="", help="the StudyInstanceUID")
    a.add_argument("--project", default="", help="evaluate against this project's rules too")
    a.add_argument("--nifti", metavar="DIR", help="check the NIfTI bundles in DIR instead")
    a = acts.add_parser("show", help="the study's report")
    a.add_argument("study")
    a.add_argument("--format", choices=("txt", "json", "html", "pdf"), default="txt")
    a.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    a = acts.add_parser("bypass", help="let failed checks pass for a project (project admins)")
    a.add_argument("study")
    a.add_argument("--project", required=True)
    a.add_argument("--user", required=True, help="your web account (admin role on the project)")
    a.add_argument("--reason", required=True)
    a.add_argument("--check", action="append", choices=CHECKS, help="only this check (repeat)")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")


def _fail(text: str, code: int = 1) -> int:
    print(f"{PROGRAM}: {text}", file=sys.stderr)
    return code


def _password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        return None
    return getpass.getpass("Password: ")


def run(args: argparse.Namespace) -> int:
    from fionagw.ops.log import setup_logging
    from fionagw.tracking.base import TrackerError
    from fionagw.tracking.factory import open_tracker

    with config_errors(PROGRAM):
        cfg = load_site(args)
        setup_logging(cfg, "qc")
        if args.action == "run" and args.nifti:
            return _run_nifti(Path(args.nifti))
        if not args.study:
            return _fail("give a StudyInstanceUID (or --nifti DIR)", 2)
        if not cfg.paths.raw_study_dir(args.study).is_dir():
            return _fail(f"no study {args.study} in {cfg.paths.raw}")
        tracker = open_tracker(cfg)
    try:
        if args.action == "run":
            return _run_study(cfg, tracker, args)
        if args.action == "show":
            return _show(cfg, tracker, args)
        return _bypass(cfg, tracker, args)
    except TrackerError as exc:
        return _fail(f"tracker: {exc}")
    except OSError as exc:
        return _fail(f"{exc.filename or 'file'}: {exc.strerror}")
    finally:
        tracker.close()


def _run_study(cfg: Any, tracker: Any, args: argparse.Namespace) -> int:
    from fionagw.qc.run import check_study

    projects = []
    if args.project:
        project = tracker.projects().get(args.project)
        if project is None:
            return _fail(f"unknown project {args.project!r}")
        projects.append(project)
    result = check_study(cfg, args.study, projects)
    failed = False
    for name, e in result.evaluations.items():
        if args.project and name != args.project:
            continue
        print(f"{name or 'site defaults'}: {result.state(name)}")
        for c in e.checks:
            gate = " [gate]" if c.name in e.gates else ""
            print(f"  {c.name}{gate}: {c.status}: {c.summary}")
            for d in c.details[:20]:
                print(f"    - {d}")
            failed |= c.status == "fail"
    return 1 if failed else 0


def _run_nifti(folder: Path) -> int:
    from fionagw.qc.nifti import check_nifti_folder

    if not folder.is_dir():
        return _fail(f"{folder}: not a folder", 2)
    result = check_nifti_folder(folder)
    print(f"nifti: {result.status}: {result.summary}")
    for d in result.details:
        print(f"  - {d}")
    return 1 if result.status == "fail" else 0


def _show(cfg: Any, tracker: Any, args: argparse.Namespace) -> int:
    from fionagw.notify.events import emit_report
    from fionagw.qc.report import build_report, render

    data = render(build_report(cfg, tracker, args.study), args.format)
    emit_report(cfg, "study", ref=args.study, format=args.format)
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


def _bypass(cfg: Any, tracker: Any, args: argparse.Namespace) -> int:
    from fionagw.qc.bypass import BypassRefused, bypass
    from fionagw.web.users import UserStore

    store = UserStore.for_site(cfg)
    password = _password(args.password_stdin)
    if password is None:
        return _fail("no terminal to ask for the password: give it on stdin with --password-stdin")
    user = store.get_user(args.user)
    if user is None or not store.verify_password(args.user, password):
        return _fail(f"user {args.user!r}: unknown or wrong password")
    try:
        outcome = bypass(cfg, tracker, user, args.study, args.project, args.reason, args.check)
    except BypassRefused as exc:
        return _fail(str(exc))
    print(f"{PROGRAM}: {outcome.message(args.project)}")
    return 0
