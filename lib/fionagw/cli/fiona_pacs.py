"""`fiona pacs sources|find|move|resend`: query/retrieve from the clinical PACS by hand.

``find`` prints the matches of a Study Root C-FIND (``--level`` STUDY, SERIES or IMAGE;
PATIENT asks Patient Root; match keys ``--patient-id``, ``--accession``, ``--study``, ``--series``, ``--date``
YYYYMMDD or a range, ``--modality``) as a table or ``--json``; the terminal is the
operator's, the log gets counts only. ``move STUDY [--series UID ...]`` retrieves into the
gateway; ``resend STUDYUID|ACCESSION`` retrieves a study cleared from the gateway and queues
its earlier assignments again (same pseudonym and UIDs at the research PACS).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fionagw.cli.common import config_errors, load_site

PROGRAM = "fiona pacs"
COMMAND = "pacs"
RETURN_KEYS = {
    "PATIENT": ("PatientID", "PatientName", "PatientBirthDate", "NumberOfPatientRelatedStudies"),
    "STUDY": (
        "StudyInstanceUID",
        "PatientID",
        "PatientName",
        "AccessionNumber",
        "StudyDate",
        "StudyDescription",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedInstances",
    ),
    "SERIES": (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
    ),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "InstanceNumber"),
}
MATCH_KEYS = (
    ("patient_id", "PatientID"),
    ("accession", "AccessionNumber"),
    ("study", "StudyInstanceUID"),
    ("series", "SeriesInstanceUID"),
    ("date", "StudyDate"),
    ("modality", "ModalitiesInStudy"),
)


def register(sub: Any) -> None:
    p = sub.add_parser(COMMAND, help="query/retrieve from the clinical PACS: find, move, resend")
    p.add_argument("--site", default="")
    p.add_argument("--source", default="", help="a PACS source (default: pacs.default)")
    acts = p.add_subparsers(dest="action", required=True)
    acts.add_parser("sources", help="the configured sources")
    a = acts.add_parser("find", help="C-FIND (Study Root)")
    a.add_argument("--level", choices=tuple(RETURN_KEYS), default="STUDY")
    a.add_argument("--patient-id", default="")
    a.add_argument("--accession", default="")
    a.add_argument("--study", default="")
    a.add_argument("--series", default="")
    a.add_argument("--date", default="", help="StudyDate: YYYYMMDD or YYYYMMDD-YYYYMMDD")
    a.add_argument("--modality", default="")
    a.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    a = acts.add_parser("move", help="retrieve a study (or some series) into the gateway")
    a.add_argument("study")
    a.add_argument("--series", action="append", default=[], help="only this series (repeat)")
    a = acts.add_parser("resend", help="retrieve a cleared study and send it again as assigned")
    a.add_argument("key", metavar="STUDYUID|ACCESSION")


def _fail(text: str, code: int = 1) -> int:
    print(f"{PROGRAM}: {text}", file=sys.stderr)
    return code


def _keys(args: argparse.Namespace) -> dict[str, str]:
    level = args.level
    keys = dict.fromkeys(RETURN_KEYS[level], "")
    for attr, keyword in MATCH_KEYS:
        value = getattr(args, attr)
        if value:
            if keyword == "ModalitiesInStudy" and level in ("SERIES", "IMAGE"):
                keyword = "Modality"
            keys[keyword] = value
    if level in ("SERIES", "IMAGE") and not keys.get("StudyInstanceUID"):
        raise ValueError(f"--level {level} needs --study (Study Root: series are under a study)")
    if level == "IMAGE" and not keys.get("SeriesInstanceUID"):
        raise ValueError("--level IMAGE needs --series")
    return keys


def _print(matches: list[Any], columns: tuple[str, ...], as_json: bool) -> None:
    rows = [
        {
            c: ("\\".join(map(str, v)) if isinstance(v := m.get(c, ""), list | tuple) else str(v))
            for c in columns
        }
        for m in matches
    ]
    if as_json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in columns).rstrip())


def run(args: argparse.Namespace) -> int:
    from fionagw.config.pacs import describe, load_pacs
    from fionagw.ops.log import setup_logging
    from fionagw.pacs.client import PacsError, connect

    with config_errors(PROGRAM):
        cfg = load_site(args)
        setup_logging(cfg, "pacs")
        settings = load_pacs(cfg)
    if args.action == "sources":
        for line in describe(settings) or ["no PACS sources configured (SCANNERIP, pacs.sources)"]:
            print(line)
        return 0
    try:
        if args.action == "find":
            try:
                keys = _keys(args)
            except ValueError as exc:
                return _fail(str(exc), 2)
            with connect(cfg, args.source) as client:
                matches = client.find(args.level, **keys)
            _print(matches, RETURN_KEYS[args.level], args.json)
            print(f"{len(matches)} match(es)", file=sys.stderr)
            return 0
        if args.action == "move":
            with connect(cfg, args.source) as client:
                got = client.retrieve(args.study, args.series)
            if got.error:
                return _fail(got.error)
            print(f"{got.completed} retrieved, {got.failed} failed, {got.warning} warnings")
            return 0 if got.ok else 1
        return _resend(cfg, args)
    except PacsError as exc:
        return _fail(str(exc))


def _resend(cfg: Any, args: argparse.Namespace) -> int:
    from fionagw.pacs.resend import ResendError, resend_from_pacs
    from fionagw.tracking.base import TrackerError
    from fionagw.tracking.factory import open_tracker

    try:
        tracker = open_tracker(cfg)
    except TrackerError as exc:
        return _fail(str(exc))
    try:
        result = resend_from_pacs(cfg, tracker, args.key, args.source)
    except (ResendError, TrackerError) as exc:
        return _fail(str(exc))
    finally:
        tracker.close()
    print(result.summary())
    return 0
