"""fiona deid: de-identify DICOM files with a research project's settings, as FIONA's
``anonymize -b -m`` does, with the release check on every output.

    fiona [--config PATH] deid FILES_OR_DIRS... --project P --participant ID [--event E]
                               --out DIR [--site S] [--processes N]

Writes ``DIR/<newSeriesUID>/<Modality>.<newSOPUID>.dcm``; the mapping of original to new UIDs
(FIONA's mapping.json) re-identifies the data, so it is kept in the gateway's protected store,
``DATADIR/mappings/<PROJECT>/deid-<time>.json``, never beside the files. The project
comes from the tracker (projects.yml or REDCap DataTransferProjects), its settings from
deid/project_settings.py; the participant ID must match the project's pattern. Folders are
walked recursively. Pass 1 reads every header (pixels skipped, but a file cut short is
caught): the identifying values of the whole input for the release check, and each file's
destination. Pass 2 is deid/batch.py over all cores: de-identify, release-check, write; a
file with a hit is not written and is named with the tag path and the kind of value, never
the value. Encapsulated documents (PDF, CDA, ...) are dropped, one line each. Inputs that
are not DICOM or cannot be read are reported one line each. Exit 0 when every input was
written (or dropped as above), 1 when any was not, 2 for a usage or configuration problem.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from fionagw.cli.common import plain_help
from fionagw.config import ConfigError, load_config
from fionagw.deid.batch import deidentify_files
from fionagw.deid.engine import Deidentifier
from fionagw.deid.factory import deidentifier_for
from fionagw.deid.inputcheck import incomplete_reason
from fionagw.deid.mapping import store_mapping, study_mapping
from fionagw.deid.project_settings import settings_for_project
from fionagw.deid.release import Identifiers, collect_identifiers
from fionagw.paths import SitePaths, safe_component, safe_uid

COMMAND = "deid"
PROG = "fiona deid"
log = logging.getLogger("fionagw.deid")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        COMMAND,
        help="de-identify DICOM files with a project's settings (FIONA's anonymize)",
        description=plain_help(__doc__.split("\n\n")[0]),
    )
    p.add_argument(
        "inputs", nargs="+", metavar="FILE_OR_DIR", help="DICOM files or folders (recursive)"
    )
    p.add_argument("--project", required=True, help="research project name")
    p.add_argument("--participant", required=True, help="participant ID (pseudonym) of the project")
    p.add_argument("--event", default="", help="event name (e.g. baseline)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--site", default="", help="a site named in the config's SITES")
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: one per core)",
    )


@dataclass
class _Report:
    inputs: int = 0
    unreadable: int = 0
    duplicates: int = 0
    lines: list[str] = field(default_factory=list)

    def problem(self, path: Path, text: str) -> None:
        self.lines.append(f"{path}: {text}")


@dataclass(frozen=True)
class _Job:
    src: Path
    dst: Path
    study: str
    series: str


def run(args: argparse.Namespace) -> int:
    try:
        deid, project_name, paths = _prepare(args)
    except _Usage as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    start = time.monotonic()
    report = _Report()
    inputs = list(_walk(args.inputs, report))
    report.inputs = len(inputs)
    ids, jobs = _plan(inputs, deid, args.out, report)
    result = deidentify_files(
        [(j.src, j.dst) for j in jobs],
        deid.settings,
        args.participant,
        args.event or None,
        identifiers=ids,
        processes=args.processes,
    )
    report.lines += [f"{src}: {reason}" for src, reason in result.failed]
    for src, hits in result.hits:  # the tag path and the kind, never the value
        report.lines += [f"{src}: release check: {hit}" for hit in hits]
    report.lines += [f"{src}: {reason}, not written" for src, reason in result.dropped]
    for src, same in result.duplicates:
        report.duplicates += 1
        report.problem(src, f"same SOP Instance UID and bytes as {same}, written once")
    done, copies = set(result.written), {src for src, _ in result.duplicates}
    sent = [j for j in jobs if j.dst in done and j.src not in copies]
    studies, series = {j.study for j in sent}, {j.series for j in sent}
    mapping = None
    if sent:
        name = time.strftime("deid-%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
        try:
            mapping = store_mapping(paths, project_name, name, study_mapping(deid, studies, series))
        except OSError as exc:
            where = paths.mapping_file(project_name, name)
            report.lines.append(f"{where}: cannot write the UID mapping: {exc.strerror}")
            sent = []
    for line in report.lines:
        print(f"{PROG}: {line}", file=sys.stderr)
    n = len(studies)
    print(
        f"{PROG}: {len(sent)} of {report.inputs} file(s) written to {args.out} "
        f"({len(series)} series, {n} stud{'y' if n == 1 else 'ies'}) for {project_name} "
        f"in {time.monotonic() - start:.1f} s; {report.unreadable} unreadable, "
        f"{len(result.hits)} with release-check hits, {len(result.failed)} failed, "
        f"{report.duplicates} duplicate(s), {len(result.dropped)} dropped"
        + (f"; UID mapping kept in {mapping}" if mapping else "")
    )
    log.info(
        "fiona deid",
        extra={
            "project": project_name,
            "inputs": report.inputs,
            "written": len(sent),
            "unreadable": report.unreadable,
            "release_hits": len(result.hits),
            "failed": len(result.failed),
            "studies": sorted(studies),
            "out": str(args.out.resolve()),
        },
    )
    handled = len(sent) + report.duplicates + len(result.dropped)  # a drop is on purpose
    return 0 if report.inputs and handled == report.inputs else 1


def _plan(
    paths: list[Path], deid: Deidentifier, out: Path, report: _Report
) -> tuple[Identifiers, list[_Job]]:
    """Pass 1, headers only: the identifying values of every readable input (for the release
    check) and its destination, FIONA's ``-b`` layout ``<newSeries>/<Modality>.<newSOP>.dcm``."""
    options = deid.settings.options
    new_uid = (lambda uid: uid) if "retain_uids" in options else deid.uid
    ids = Identifiers()
    jobs: list[_Job] = []  # one destination twice: deid/batch.py compares the files
    for path in paths:
        if not path.exists():
            continue
        try:  # large values (pixels) are skipped, not read; their extent is still checked
            ds = dcmread(path, defer_size=4096)
            reason = incomplete_reason(ds, path.stat().st_size)
            if reason is None:
                collect_identifiers(ds, options=options, into=ids)
                study, series = str(ds.get("StudyInstanceUID", "")), str(ds.SeriesInstanceUID)
                modality = safe_component(str(ds.get("Modality", "") or "OT"))
                dst = (
                    out
                    / safe_uid(new_uid(series))
                    / f"{modality}.{safe_uid(new_uid(str(ds.SOPInstanceUID)))}.dcm"
                )
        except InvalidDicomError:
            reason = "not a DICOM file"
        except OSError as exc:
            reason = f"cannot read: {exc.strerror or exc}"
        except Exception as exc:  # a broken header: reported, never a traceback or a value
            reason = f"broken DICOM ({type(exc).__name__})"
        if reason:
            report.unreadable += 1
            report.problem(path, reason)
        else:
            jobs.append(_Job(path, dst, study, series))
    return ids, jobs


class _Usage(Exception):
    """A usage or configuration problem: one line, exit 2."""


def _prepare(args: argparse.Namespace) -> tuple[Deidentifier, str, SitePaths]:
    from fionagw.config.projects import ProjectsError
    from fionagw.ops.log import setup_logging
    from fionagw.tracking.base import TrackerError
    from fionagw.tracking.factory import open_tracker
    from fionagw.tracking.secrets import SecretsError

    try:
        cfg = load_config(args.config, args.site or None)
        projects = open_tracker(cfg).projects()
    except (ConfigError, ProjectsError, SecretsError, TrackerError) as exc:
        raise _Usage(f"config error: {exc}") from None
    project = projects.get(args.project)
    if project is None:
        raise _Usage(
            f"unknown project {args.project!r} (known: {', '.join(sorted(projects)) or 'none'})"
        )
    if not project.valid_participant(args.participant):
        raise _Usage(
            f"participant ID {args.participant!r} does not match project {project.name}'s "
            f"pattern {project.participant_id!r}"
        )
    if args.event and project.events and args.event not in project.events:
        raise _Usage(
            f"event {args.event!r} is not an event of project {project.name} "
            f"({', '.join(project.events)})"
        )
    try:
        setup_logging(cfg, "deid")
    except OSError as exc:
        raise _Usage(f"cannot write the log under {cfg.paths.logs}: {exc.strerror}") from None
    # (setup_logging silences pydicom's value warnings: they quote patient data, and FIONA UIDs
    # with a leading-zero component, which upstream writes too)
    try:
        settings = settings_for_project(project, cfg)
    except ConfigError as exc:
        raise _Usage(f"config error: {exc}") from None
    return deidentifier_for(settings), project.name, cfg.paths


def _walk(inputs: list[str], report: _Report) -> Iterator[Path]:
    """Every file named or under a named folder (symlinks followed, as raw/ holds them)."""
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            for folder, dirs, files in os.walk(path, followlinks=True):
                dirs.sort()
                for name in sorted(files):
                    yield Path(folder) / name
        elif path.exists():
            yield path
        else:
            report.problem(path, "no such file or folder")
            report.unreadable += 1
            yield path
