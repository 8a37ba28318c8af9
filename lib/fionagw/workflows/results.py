"""What happens to a job's output: checked, sent, verified, recorded.

1. **Check** (FIONA's runOneJob check, widened): every DICOM file under ``output/`` must name one
   of the job's input studies; a derived series must have a new SeriesInstanceUID and each
   instance a new SOPInstanceUID (one that reuses an input's would overwrite the original in
   the PACS). One offending file refuses the whole output, and nothing is sent.
2. **Send**: the DICOM files go to the stream's destination, else its project's, through the
   destination's own send (send/), then the PACS is asked whether it holds every instance
   (verify); a send or verification that falls short fails the job (retry sends it again:
   sending is idempotent).
3. **Record**: ``output.json`` (a JSON object, if the step wrote one) goes to the tracker as a
   WorkflowOutput record; an event ``workflow-finished`` is written for notifications.

A ``features_only`` stream sends nothing but ``features.json``, to its https destination,
after the release check: every identifying value of the input study (names, IDs, dates,
UIDs, ...) is looked for in the file's text, and a hit refuses it, naming the kinds found.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fionagw.config import SiteConfig
from fionagw.config.workflows import Stream
from fionagw.ops.perms import make_dirs
from fionagw.paths import safe_uid
from fionagw.tracking.base import Tracker
from fionagw.tracking.records import WorkflowOutput, now_text
from fionagw.workflows.jobs import Job

LOGGER = logging.getLogger(__name__)
OUTPUT_JSON = "output.json"
FEATURES_JSON = "features.json"
_PIXELS = 0x7FE00010


class OutputRefused(Exception):
    """The output breaks a rule; str() is one line naming the file and the rule (UIDs only)."""


class ResultError(Exception):
    """The output could not be delivered or recorded now; retrying may succeed."""


@dataclass
class DicomOutput:
    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str


@dataclass
class InputIndex:
    studies: set[str] = field(default_factory=set)
    series: set[str] = field(default_factory=set)
    sops: set[str] = field(default_factory=set)


def index_input(input_dir: Path) -> InputIndex:
    """The input's UIDs, from the staged folder names (input/<Study>/<Series>/<SOP>)."""
    index = InputIndex()
    for f in input_dir.glob("*/*/*"):
        index.studies.add(f.parent.parent.name)
        index.series.add(f.parent.name)
        index.sops.add(f.name)
    return index


def _files(folder: Path) -> Iterator[Path]:
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            yield p


def _is_part10(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def read_uids(path: Path) -> DicomOutput:
    """Study, series and SOP instance UID of a Part-10 file (the header only)."""
    from fionagw.dicom.errors import CodecError
    from fionagw.dicom.raw import read_part10

    data = path.read_bytes()
    try:
        ds = read_part10(data, str(path), stop=(_PIXELS,))
    except CodecError:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
    return DicomOutput(
        path,
        str(ds.get("StudyInstanceUID", "")),
        str(ds.get("SeriesInstanceUID", "")),
        str(ds.get("SOPInstanceUID", "")),
    )


def check_output(output_dir: Path, inputs: InputIndex) -> list[DicomOutput]:
    """The DICOM files of the output, each checked against the input; OutputRefused. A file is
    named by its place among the output's DICOM files and its SOP Instance UID, never by its
    name (a tool may name files after the patient)."""
    candidates = [p for p in _files(output_dir) if _is_part10(p)]
    found = []
    for k, path in enumerate(candidates, 1):
        where = f"output DICOM file {k} of {len(candidates)}"
        try:
            out = read_uids(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file refuses the output
            raise OutputRefused(f"{where}: unreadable ({type(exc).__name__})") from None
        where += f" (SOP {out.sop_uid or 'none'})"
        if out.study_uid not in inputs.studies:
            raise OutputRefused(
                f"{where}: StudyInstanceUID {out.study_uid or '(none)'} is not an input study"
                " of the job"
            )
        if not out.series_uid or out.series_uid in inputs.series:
            raise OutputRefused(
                f"{where}: a derived series needs a new SeriesInstanceUID (it reuses an input"
                " series' UID)"
            )
        if not out.sop_uid or out.sop_uid in inputs.sops:
            raise OutputRefused(f"{where}: SOPInstanceUID reuses an input instance's UID")
        found.append(out)
    return found


def _destination_name(tracker: Tracker, job: Job, stream: Stream) -> str:
    if stream.destination:
        return stream.destination
    if job.destination:
        return job.destination
    project = tracker.projects().get(job.project) if job.project else None
    return project.destination if project is not None else ""


def _named_by_uid(files: list[DicomOutput], folder: Path) -> list[DicomOutput]:
    """The files linked as <SOP UID>.dcm, so what a send reports names UIDs only (a tool may
    name its files after the patient)."""
    if folder.exists():
        shutil.rmtree(folder)
    make_dirs(folder)
    out = []
    for f in files:
        target = folder / f"{safe_uid(f.sop_uid)}.dcm"
        try:
            os.link(f.path, target)
        except OSError:
            shutil.copyfile(f.path, target)
        out.append(DicomOutput(target, f.study_uid, f.series_uid, f.sop_uid))
    return out


def send_dicom(
    cfg: SiteConfig,
    tracker: Tracker,
    job: Job,
    stream: Stream,
    files: list[DicomOutput],
    folder: Path,
) -> str:
    """C-STORE the output and verify it in the PACS; one line of what was done."""
    from fionagw.send import SendContext, SendError, load_destinations

    name = _destination_name(tracker, job, stream)
    if not name:
        return f"{len(files)} DICOM files kept (no destination for project {job.project or '-'})"
    destination = load_destinations(cfg).get(name)
    if destination is None:
        raise ResultError(f"destination {name!r} is not in config.json")
    files = _named_by_uid(files, folder / "outgoing" / "dicom")
    lines = []
    by_study: dict[str, list[DicomOutput]] = {}
    for f in files:
        by_study.setdefault(f.study_uid, []).append(f)
    for study, outs in by_study.items():
        # a folder destination files it under <project>/workflows/<study>/ (no participant)
        context = SendContext(job.project or "workflows", "workflows", "", study)
        try:
            result = destination.send_study([o.path for o in outs], context)
        except SendError as exc:
            raise ResultError(f"send to {name}: {exc}") from None
        if not result.ok:
            raise ResultError(f"send to {name}: {result.summary()}")
        expected: dict[str, list[str]] = {}
        for o in outs:
            expected.setdefault(o.series_uid, []).append(o.sop_uid)
        check = destination.verify(study, expected)
        if check is not None and not check.verified:
            raise ResultError(f"send to {name}: {check.summary()}")
        lines.append(check.summary() if check is not None else f"sent {result.sent}")
    return f"{name}: " + "; ".join(lines)


def read_output_json(output_dir: Path) -> str | None:
    """The text of output.json when present; OutputRefused when it is not a JSON object."""
    path = output_dir / OUTPUT_JSON
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise OutputRefused(f"{OUTPUT_JSON}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise OutputRefused(f"{OUTPUT_JSON}: expected a JSON object")
    return json.dumps(value, sort_keys=True)


def release_check_features(input_dir: Path, text: str) -> None:
    """OutputRefused when features.json holds any identifying value of the input study."""
    import pydicom

    from fionagw.deid.release import collect_identifiers

    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in _files(input_dir)]
    ids = collect_identifiers(datasets)
    kinds = ids.find_text(text)
    if kinds:
        raise OutputRefused(
            f"{FEATURES_JSON}: the release check found identifying values"
            f" ({', '.join(sorted(kinds))}); nothing was sent"
        )


def send_features(cfg: SiteConfig, job: Job, stream: Stream, folder: Path) -> str:
    """The release-checked features.json to the stream's https destination, under a name
    that carries no identifier (``<stream>_job<n>_features.json``)."""
    from fionagw.send import SendError, load_destinations
    from fionagw.send.https import HttpsDestination

    output = folder / "output" / FEATURES_JSON
    if not output.is_file():
        raise OutputRefused(f"a features_only stream must write {FEATURES_JSON}; none found")
    text = output.read_text(encoding="utf-8", errors="replace")
    try:
        json.loads(text)
    except ValueError as exc:
        raise OutputRefused(f"{FEATURES_JSON}: not JSON ({exc.msg} at line {exc.lineno})") from None
    release_check_features(folder / "input", text)
    destination = load_destinations(cfg)[stream.features_only]
    assert isinstance(destination, HttpsDestination)  # config checked the type
    outgoing = folder / "outgoing"
    make_dirs(outgoing)
    upload = outgoing / f"{stream.name}_job{job.job_number}_{FEATURES_JSON}"
    shutil.copyfile(output, upload)
    try:
        return f"{stream.features_only}: " + destination.put_file(upload, lambda _m: None)
    except SendError as exc:
        raise ResultError(str(exc)) from None


def deliver(cfg: SiteConfig, tracker: Tracker, job: Job, stream: Stream, folder: Path) -> str:
    """Check, send and record a finished job's output; one line of what left the gateway."""
    output_dir = folder / "output"
    files = check_output(output_dir, index_input(folder / "input"))
    output_json = read_output_json(output_dir)
    if stream.features_only:
        sent = send_features(cfg, job, stream, folder)
        if files:
            sent += f"; {len(files)} DICOM files kept (features only)"
    elif files:
        sent = send_dicom(cfg, tracker, job, stream, files, folder)
    else:
        sent = "no DICOM output"
    if output_json is not None:
        tracker.record_workflow_output(
            WorkflowOutput(
                record_id=f"job_{job.job_number}",
                workflow_job=job.job_number,
                workflow_stream=job.stream,
                workflow_project=job.project,
                workflow_study_instance_uid=job.study_uids[0] if job.study_uids else "",
                workflow_output=output_json,
                workflow_date=now_text(),
            )
        )
        sent += f"; {OUTPUT_JSON} recorded in the {tracker.name}"
    return sent
