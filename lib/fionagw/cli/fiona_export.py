"""`fiona export add|status|list`: the Exports queue from a shell.

fiona export add PROJECT --participant ID [--study UID] [--event E] [--type PURE|NIFTI|DICOM]
                 [--destination download|FOLDER] [--password-file FILE]
fiona export list              every job, newest first, with its status and progress
fiona export status JOB        one job: status, progress, files or error
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from fionagw.cli.common import config_errors, load_site

PROGRAM = "fiona export"
COMMAND = "export"


def register(sub: Any) -> None:
    p = sub.add_parser(COMMAND, help="Exports: queue an export, list the jobs, a job's status")
    p.add_argument("--site", default="")
    acts = p.add_subparsers(dest="action", required=True)
    add = acts.add_parser("add", help="queue an export (createZipFileCmd runs it)")
    add.add_argument("project")
    add.add_argument("--participant", default="", help="the participant (research PatientID)")
    add.add_argument("--study", default="", help="one study (research StudyInstanceUID)")
    add.add_argument("--event", default="")
    add.add_argument("--type", default="PURE", help="PURE, NIFTI or DICOM")
    add.add_argument("--destination", default="download")
    add.add_argument(
        "--password-file",
        default="",
        help="a file whose first line is the zip password (AES-256); never on the command line",
    )
    acts.add_parser("list", help="every export job")
    st = acts.add_parser("status", help="one job's status")
    st.add_argument("job")


def describe(state: dict[str, Any]) -> str:
    job = state.get("job", {})
    progress = ""
    if state.get("files_total"):
        progress = f" {state.get('files_done', 0)}/{state['files_total']} files"
        progress += f" {int(state.get('bytes', 0)) / 1e6:.1f} MB"
    error = f": {state['error']}" if state.get("error") else ""
    files = f" -> {', '.join(state['files'])}" if state.get("files") else ""
    return (
        f"{job.get('id', '?')} {state.get('status', '?'):<7} {job.get('project', '')}"
        f" {job.get('exportType', '')} attempt {job.get('downloadAttempts', 0)}"
        f"{progress}{files}{error}"
    )


def run(args: Any) -> int:
    from fionagw.export import jobs as q
    from fionagw.export.settings import load_exports

    with config_errors(PROGRAM):
        cfg = load_site(args)
        settings = load_exports(cfg)
    try:
        if args.action == "add":
            password = ""
            if args.password_file:
                lines = Path(args.password_file).read_text().splitlines()
                password = lines[0] if lines else ""
            job = q.add_job(
                settings,
                q.ExportJob(
                    project=args.project,
                    studyinstanceuid=args.study,
                    patientid=args.participant,
                    event=args.event,
                    exportType=args.type,
                    destination=args.destination,
                    user=getpass.getuser(),
                ),
                password,
            )
            print(
                f"{PROGRAM}: queued {job.id} ({job.exportType}{', encrypted' if password else ''})"
            )
            return 0
        if args.action == "list":
            for state in q.all_states(settings):
                print(describe(state))
            return 0
        state = q.read_state(settings, args.job)
        if state is None:
            raise q.ExportError(f"no export job {args.job!r}")
        print(describe(state))
        return 0
    except (q.ExportError, OSError) as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 1
