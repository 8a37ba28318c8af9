"""`fiona group create|add|list|show|report`: cohorts of studies and their CSV reports.

``create NAME --project P [--called RE] [--calling RE] [--by-project] [--schedule CRON]
[--template T]`` makes a group (automatic assignment by called AE, calling AE or transfers to
the project; reports on a cron schedule; the file name template with {group_name},
{report_type}, {date}); ``add NAME STUDY...`` assigns studies by hand; ``list``; ``show NAME``
prints its rows (pseudonym, event, QC, transfer, verification); ``report NAME`` makes the CSV
report now and prints its path (sendNotifications delivers it to the subscribers of
``group-report``); ``upload NAME FOLDER`` takes every ZIP of FOLDER as one upload (DICOM
with an optional JSON sidecar, or a NIfTI set) into the group; ``sidecar-template`` prints
the sidecar's keys.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fionagw.cli.common import config_errors, load_site

PROGRAM = "fiona group"
COMMAND = "group"


def register(sub: Any) -> None:
    p = sub.add_parser(COMMAND, help="groups (cohorts) of studies: create, add, list, report")
    p.add_argument("--site", default="")
    acts = p.add_subparsers(dest="action", required=True)
    a = acts.add_parser("create", help="make a group")
    a.add_argument("name")
    a.add_argument("--project", required=True, help="the project all its studies belong to")
    a.add_argument("--called", default="", help="add arrivals on this called AE (regex)")
    a.add_argument("--calling", default="", help="add arrivals from this calling AE (regex)")
    a.add_argument("--by-project", action="store_true", help="add studies sent to the project")
    a.add_argument("--schedule", default="", help="also report on this cron schedule")
    a.add_argument(
        "--template", default="", help="report file name: {group_name} {report_type} {date}"
    )
    a = acts.add_parser("add", help="assign studies to a group")
    a.add_argument("name")
    a.add_argument("studies", nargs="+", metavar="STUDY_UID")
    acts.add_parser("list", help="every group")
    a = acts.add_parser("show", help="a group's studies")
    a.add_argument("name")
    a = acts.add_parser("report", help="make the group's CSV report now")
    a.add_argument("name")
    a = acts.add_parser("upload", help="upload a folder of ZIPs (one study each) into a group")
    a.add_argument("name")
    a.add_argument("folder")
    acts.add_parser("sidecar-template", help="print the JSON sidecar template of an upload")


def _fail(text: str) -> int:
    print(f"{PROGRAM}: {text}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    from fionagw.notify import groups as g
    from fionagw.ops.log import setup_logging
    from fionagw.tracking.base import TrackerError
    from fionagw.tracking.factory import open_tracker

    with config_errors(PROGRAM):
        cfg = load_site(args)
        setup_logging(cfg, "group")
    if args.action == "sidecar-template":
        import json

        print(json.dumps(g.SIDECAR_TEMPLATE, indent=2))
        return 0
    try:
        if args.action == "upload":
            from pathlib import Path

            refused = 0
            for zip_name, outcome in g.upload_folder(cfg, args.name, Path(args.folder), "fiona"):
                print(f"{zip_name}: {outcome}")
                refused += outcome.startswith("refused")
            return 1 if refused else 0
        if args.action == "create":
            g.create_group(
                cfg,
                args.name,
                args.project,
                called=args.called,
                calling=args.calling,
                by_project=args.by_project,
                schedule=args.schedule,
                template=args.template or g.DEFAULT_TEMPLATE,
            )
            print(f"group {args.name} created for project {args.project}")
            return 0
        if args.action == "add":
            n = g.add_studies(cfg, args.name, args.studies)
            print(f"{n} studies added to {args.name}")
            return 0
        groups = g.load_groups(cfg)
        if args.action == "list":
            for name, grp in sorted(groups.items()):
                last = grp["reports"][-1]["file"] if grp.get("reports") else "no report yet"
                print(f"{name}: project {grp['project']}, {len(grp['studies'])} studies, {last}")
            return 0
        if args.name not in groups:
            return _fail(f"no group {args.name!r}")
        tracker = open_tracker(cfg)
        try:
            if args.action == "show":
                for row in g.rows(cfg, tracker, groups[args.name]):
                    print(", ".join(f"{k}={v}" for k, v in row.items() if v))
                return 0
            print(g.make_report(cfg, tracker, args.name, "manual"))
            return 0
        finally:
            tracker.close()
    except g.GroupError as exc:
        return _fail(str(exc))
    except TrackerError as exc:
        return _fail(f"tracker: {exc}")
    except OSError as exc:
        return _fail(f"{exc.filename or 'file'}: {exc.strerror}")
