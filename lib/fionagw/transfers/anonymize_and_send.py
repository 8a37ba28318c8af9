"""anonymizeAndSend: each queued transfer request becomes a de-identified copy of the study at
the project's destination, and its outcome is written back to the tracker as FIONA does.

Per request (oldest first; see queue.py for the files and their retry state):

1. the request, its tracker record, the project (active) and the participant ID (the project's
   regex) must be valid, and the study still under ``raw/`` (FIONA: "Study has been deleted
   from Fiona. Resend from PACS!"), and pass the project's QC gates (qc/gate.py: otherwise
   "held by QC" until a project admin bypasses); otherwise the request fails at once;
2. the series to send are chosen (selection.py: PR / secondary-capture removal, CHECKBURNEDINFO
   held back);
2b. the series classified CHECKBURNEDINFO are cleaned after de-identification (deid/pixels.py:
   OCR, identifying text masked, verified; transfer_error___3 "pixel anonymization
   performed"); a file that still fails the verification is held back, the rest is sent;
3. every file is de-identified with the project's settings into a private work folder
   (``site/temp/anonymizeAndSend/<request>/<newSeries>/<MOD>.<newSOP>.dcm`` + mapping.json,
   FIONA's ``-b -m`` layout) and release-checked against the identifiers of the original study;
   a broken file or a release hit fails the request and nothing is sent (transfer_error___1);
4. the files go to the project's destination (for sftp and https: a package into the
   destination's outbox, which sendFiles delivers and records); a failed send (transfer_error___2) keeps the
   request queued and is retried with exponential backoff up to ``sending.max_attempts``, then
   fails. The UIDs are a pure function of the originals, so a resend never duplicates;
   a request re-queued by the reconciliation with ``resend_sop_uids`` sends only those;
4b. a destination that can be asked (dicom: C-FIND) is asked what it now holds of the study:
   the verification ("sent 240, verified 240") is stored in the tracker with the transfer
   (WhatIsInIDS7 record), and what was sent goes into a sent manifest for the reconciliation;
5. the tracker gets transfer_date, transfer_mapped_uid, transfer_error___1..3,
   transfer_error_message (FIONA's JSON), transfer_active_proc_time and transfers_complete; the
   request moves to transfers_done/ (or transfers_fail/ with its failure record, failures.py),
   the study is mirrored into the project's imaging records, and the sent tags into the
   project's review inventory.

Every attempt leaves a ``transfer-attempted`` event (outcome, reason, whether permanent), from
which the metrics count attempts and failures by reason. A permanent failure is tried once: the
failure record holds it until what it depends on changes (failures.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom import dcmread

from fionagw import notify
from fionagw.arrival.events import record_event
from fionagw.config import ConfigError, SiteConfig
from fionagw.config.projects import Project
from fionagw.deid.batch import deidentify_files
from fionagw.deid.factory import deidentifier_for
from fionagw.deid.mapping import store_mapping, study_mapping
from fionagw.deid.pixels import ENGINE as ENGINE_NAME
from fionagw.deid.pixels import Terms, clean_files, exclusion_of
from fionagw.deid.project_settings import pixel_settings_for_project, settings_for_project
from fionagw.deid.release import Identifiers, collect_identifiers
from fionagw.qc.gate import REASON as QC_REASON
from fionagw.qc.gate import held_checks
from fionagw.reconcile.check import QUEUED_KEY, RESEND_KEY, pacs_check
from fionagw.reconcile.manifest import SentManifest, write_manifest
from fionagw.send import (
    DEFAULT_DESTINATION,
    Destination,
    SendContext,
    load_destinations,
    load_sending,
)
from fionagw.send.package import PackageDestination
from fionagw.tracking.base import Tracker, TrackerError
from fionagw.tracking.records import (
    COMPLETE_ERROR,
    COMPLETE_OK,
    COMPLETE_PENDING,
    ERROR_ANONYMIZATION,
    ERROR_SEND,
    PIXELS_ANONYMIZED,
    ImagingRecord,
    Transfer,
    now_text,
)
from fionagw.transfers.failures import (
    FailureRecord,
    HitSummary,
    fingerprint,
    summarize_hits,
)
from fionagw.transfers.queue import BadRequestFile, Request, RequestQueue, RetryState
from fionagw.transfers.review_inventory import record_files
from fionagw.transfers.selection import SeriesPlan, plan_series

if TYPE_CHECKING:
    from fionagw.send.verify import Verification

log = logging.getLogger("fionagw.anonymizeAndSend")

DELETED = (
    "Study has been deleted from Fiona. Resend from PACS!"  # FIONA's words, kept for its users
)


class Failure(Exception):
    """Why a request did not go: ``reason`` is a key of failures.PERMANENT or TRANSIENT."""

    def __init__(self, reason: str, message: str, hits: list[HitSummary] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.hits = hits or []


class Permanent(Failure):
    """The request cannot succeed as it is: it fails now (retrying would change nothing)."""


class Retry(Failure):
    """The request may succeed later (destination down, tracker unreachable): keep it queued."""


@dataclass
class Report:
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    waiting: int = 0  # not yet due (backoff)

    def summary(self) -> str:
        parts = [f"{len(self.sent)} sent"] if self.sent else []
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.deferred:
            parts.append(f"{len(self.deferred)} to retry")
        if self.waiting:
            parts.append(f"{self.waiting} waiting for their retry time")
        return ", ".join(parts)


@dataclass
class Attempt:
    """What one request did, for the tracker's transfer_error_message (FIONA's keys)."""

    request: dict[str, Any]
    anonymize_return_code: int = 0
    anonymize_command: str = ""
    anonymize_output: str = ""
    storescu_return_code: int = 0
    storescu_command: str = ""
    storescu_output: str = ""
    held_back: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # objects not sent whole (never destroyed)
    rewritepixel: list[str] = field(default_factory=list)  # what the pixel cleaning did
    error: str = ""

    def message(self) -> str:
        data = {
            "request": self.request,
            "rewritepixel_command": self.rewritepixel,
            "anonymize_return_code": self.anonymize_return_code,
            "anonymize_command": self.anonymize_command,
            "anonymize_output": self.anonymize_output,
            "storescu_return_code": self.storescu_return_code,
            "storescu_command": self.storescu_command,
            "storescu_output": self.storescu_output,
            "held_back": self.held_back,
            "dropped": self.dropped,
            "error": self.error,
        }
        return json.dumps(data, sort_keys=True)


class AnonymizeAndSend:
    def __init__(self, cfg: SiteConfig, tracker: Tracker, *, processes: int | None = None) -> None:
        self.cfg = cfg
        self.tracker = tracker
        self.queue = RequestQueue(cfg.paths)
        self.destinations = load_destinations(cfg)
        self.sending = load_sending(cfg)
        self.processes = processes
        self.work_root = cfg.paths.send_work
        self._projects: dict[str, Project] | None = None

    @property
    def projects(self) -> dict[str, Project]:
        if self._projects is None:
            self._projects = self.tracker.projects()
        return self._projects

    # -- the run ---------------------------------------------------------------------------

    def run(self, now: float | None = None) -> Report:
        report = Report()
        for path in self.queue.pending():
            state = self.queue.state(path)
            if state.next_try > (now if now is not None else time.time()):
                report.waiting += 1
                continue
            outcome = self.process(path, state)
            getattr(report, outcome).append(path.name)
        return report

    def process(self, path: Path, state: RetryState) -> str:
        """Handle one request file; returns "sent", "failed" or "deferred"."""
        start = time.monotonic()
        try:
            request = self.queue.read(path)
        except BadRequestFile as exc:
            log.error("request failed", extra={"file": path.name, "error": str(exc)})
            self.queue.fail(
                path,
                FailureRecord(path.name, None, str(exc), "request_file", failed_at=time.time()),
            )
            self._event(path.name, None, "failed", "request_file", True)
            return "failed"
        attempt = Attempt(request.row)
        transfer = None
        try:
            transfer = self._transfer(request)
            sent = self._send(request, transfer, attempt)
            outcome = self._finish_sent(request, transfer, attempt, sent, start, state)
            # "failed": series held back; "deferred": sent, but the tracker was not updated
            reason = {"failed": "held_back", "deferred": "tracker"}.get(outcome, "")
            self._event(path.name, request, outcome, reason, outcome == "failed")
            return outcome
        except Permanent as exc:
            attempt.error = str(exc)
            outcome = self._finish_failed(request, transfer, attempt, start, state, exc)
            self._event(path.name, request, outcome, exc.reason, True)
            return outcome
        except Retry as exc:
            attempt.error = str(exc)
            outcome = self._defer(request, transfer, attempt, state, start, exc)
            self._event(path.name, request, outcome, exc.reason, False)
            return outcome
        finally:  # the de-identified copy was only ever for sending
            shutil.rmtree(self.work_root / path.stem, ignore_errors=True)

    def _event(
        self, name: str, request: Request | None, outcome: str, reason: str, permanent: bool
    ) -> None:
        """One ``transfer-attempted`` event per attempt (what the metrics count)."""
        try:
            record_event(
                self.cfg,
                "transfer-attempted",
                study_uid=request.study_uid if request else "",
                request=name,
                project=request.project if request else "",
                outcome=outcome,
                reason=reason,
                permanent=permanent,
            )
        except OSError as exc:  # a lost count must not undo the transfer's outcome
            log.warning("transfer event not written", extra={"file": name, "error": exc.strerror})
        notify.emit_send(self.cfg, request, outcome, reason)

    def _record(
        self, request: Request, error: str, exc: Failure | None, reason: str, attempts: int
    ) -> FailureRecord:
        try:
            project = self.projects.get(request.project)
            stamp = fingerprint(self.cfg, project, request.study_uid)
        except TrackerError:  # no projects to compare with later: hold nothing
            stamp = ""
        return FailureRecord(
            request.name,
            request.row,
            error,
            reason,
            permanent=not isinstance(exc, Retry),
            hits=exc.hits if exc else [],
            attempts=attempts,
            failed_at=time.time(),
            fingerprint=stamp,
        )

    # -- steps ------------------------------------------------------------------------------

    def _transfer(self, request: Request) -> Transfer:
        try:
            for t in self.tracker.transfers(request.study_uid):
                if t.instance == request.instance:
                    return t
        except TrackerError as exc:
            raise Retry("tracker", f"tracker: {exc}") from None
        raise Permanent(
            "tracker_record",
            f"no transfer request {request.instance} for this study in the tracker (deleted there?)",
        )

    def _project(self, request: Request) -> Project:
        project = self.projects.get(request.project)
        if project is None:
            raise Permanent("project", f"unknown project {request.project!r}")
        if not project.active:
            raise Permanent("project", f"project {request.project!r} is not active")
        if not project.valid_participant(request.participant):
            raise Permanent(
                "participant",
                f"participant ID {request.participant!r} does not match the naming rule "
                f"of project {project.name} ({project.participant_id})",
            )
        return project

    def _destination(self, project: Project) -> Destination:
        name = project.destination or DEFAULT_DESTINATION
        destination = self.destinations.get(name)
        if destination is None:
            raise Permanent(
                "settings",
                f"project {project.name}: destination {name!r} is not configured "
                f"(config.json destinations: {', '.join(sorted(self.destinations)) or 'none'})",
            )
        return destination

    def _send(self, request: Request, transfer: Transfer, attempt: Attempt) -> _Sent:
        project = self._project(request)
        raw_study = self.cfg.paths.raw_study_dir(request.study_uid)
        if not raw_study.is_dir():
            raise Permanent("study_deleted", DELETED)
        try:
            held, why = held_checks(self.cfg, request.study_uid, project)
        except OSError as exc:  # the QC result could not be stored: a full disk passes
            raise Retry("disk", f"QC result: {exc.strerror}") from None
        if held:  # nothing is de-identified or sent until QC passes or an admin bypasses
            raise Permanent(QC_REASON, why)
        plans = plan_series(raw_study, project)
        sending = [p for p in plans if p.sends]
        attempt.held_back = [f"{p.series_uid} ({p.description}): {p.hold}" for p in plans if p.hold]
        missing = sum(p.missing for p in sending)
        if missing:
            raise Permanent(
                "study_deleted",
                f"{missing} image(s) of this study are gone from the archive; resend from PACS",
            )
        if not any(p.files for p in sending):
            raise Permanent(
                "nothing_to_send",
                "nothing to send: " + ("; ".join(attempt.held_back) or "the study has no images"),
            )
        try:
            settings = settings_for_project(project, self.cfg)
            pixel_settings = pixel_settings_for_project(project, self.cfg)
        except (ConfigError, ValueError) as exc:
            raise Permanent("settings", f"de-identification settings: {exc}") from None
        destination = self._destination(project)
        for plan in sending:  # FIONA's rewritepixelexclusions: these keep their pixels
            if plan.clean_pixels and plan.files:
                header = dcmread(plan.files[0], stop_before_pixels=True)
                tag = exclusion_of(header, pixel_settings)
                if tag:
                    plan.clean_pixels = False
                    attempt.rewritepixel.append(
                        f"{plan.series_uid}: pixels sent as they are (exclusion on {tag})"
                    )

        deid = deidentifier_for(settings)
        work = self.work_root / request.path.stem
        shutil.rmtree(work, ignore_errors=True)
        jobs = []
        manifest = SentManifest(destination.name, deid.uid(request.study_uid))
        only = _resend_only(request)
        for plan in sending:
            new_series = deid.uid(plan.series_uid)
            series_dir = work / new_series
            sops = manifest.series.setdefault(new_series, [])
            for src, sop in zip(plan.files, plan.sops, strict=True):
                new_sop = deid.uid(sop)
                sops.append(new_sop)  # the whole selection: what the PACS must hold
                if only is None or new_sop in only:
                    # FIONA's -b layout: <newSeries>/<Modality>.<newSOP>.dcm
                    jobs.append((src, series_dir / f"{plan.modality}.{new_sop}.dcm"))
        attempt.anonymize_command = (
            f"fiona deid --project {project.name} --participant {request.participant}"
            + (f" --event {request.event}" if request.event else "")
        )
        identifiers = _study_identifiers(sending)
        try:
            result = deidentify_files(
                jobs,
                settings,
                request.participant,
                request.event or None,
                identifiers=identifiers,
                processes=self.processes,
            )
        except OSError as exc:  # the work folder: a full disk passes
            raise Retry("disk", f"de-identification work folder: {exc.strerror}") from None
        output_of = dict(
            jobs
        )  # results name the source; messages name the output (no original UID)
        problems = [f"{_rel(work, output_of.get(p, p))}: {reason}" for p, reason in result.failed]
        problems += [
            f"{_rel(work, output_of.get(p, p))}: {', '.join(str(h) for h in hits)}"
            for p, hits in result.hits
        ]
        if problems:
            attempt.anonymize_return_code = 1
            attempt.anonymize_output = "; ".join(problems[:20]) + (
                f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
            )
            kind = (
                "release check found identifying values"
                if result.hits
                else "de-identification failed"
            )
            raise Permanent(
                "release_check" if result.hits else "deidentification",
                f"{kind} in {len(problems)} file(s); nothing was sent",
                summarize_hits((h.path, h.kind) for _, hits in result.hits for h in hits),
            )
        attempt.anonymize_output = f"{len(result.written)} file(s) in {result.seconds:.1f} s"
        try:
            cleaned = self._clean_pixels(sending, jobs, result, manifest, pixel_settings, attempt)
        except OSError as exc:  # the work folder: a full disk passes
            raise Retry("disk", f"pixel cleaning: {exc.strerror}") from None
        # dropped objects (encapsulated documents) are named in the record, never sent destroyed
        attempt.dropped = [f"{_rel(work, output_of.get(p, p))}: {why}" for p, why in result.dropped]
        if not result.written:
            raise Permanent(
                "nothing_to_send",
                f"no file of the study can be sent ({len(result.dropped)} dropped); nothing was sent"
                + (f"; {'; '.join(attempt.held_back)}" if attempt.held_back else ""),
            )
        mapping = study_mapping(deid, request.study_uid, [p.series_uid for p in sending])
        # the original -> new UID mapping stays in the gateway's protected store, never in work/
        store_mapping(self.cfg.paths, project.name, request.path.stem, mapping)

        new_study = deid.uid(request.study_uid)
        context = SendContext(project.name, request.participant, request.event, new_study)
        attempt.storescu_command = f"send to {destination.name}" + (
            f" ({len(jobs)} missing of {manifest.count})" if only is not None else ""
        )
        queued = isinstance(destination, PackageDestination)
        if queued:  # sftp, https: a package in the outbox; sendFiles delivers and records it
            sent = destination.enqueue(
                sorted(result.written), context, {"name": request.name, "row": request.row}
            )
        else:
            sent = destination.send_study(sorted(result.written), context)
        attempt.storescu_output = f"{sent.sent} of {len(result.written)} sent" + (
            f"; warnings: {'; '.join(sent.warnings[:5])}" if sent.warnings else ""
        )
        if not sent.ok:
            attempt.storescu_return_code = 1
            reasons = [sent.error] if sent.error else []
            reasons += [f"{_rel(work, p)}: {why}" for p, why in sent.failed[:10]]
            attempt.storescu_output += "; " + "; ".join(reasons)
            raise Retry(
                "send",
                f"send to {destination.name} failed: {reasons[0] if reasons else 'unknown'}",
            )
        verification = destination.verify(manifest.study_uid, manifest.series)
        if verification is not None:
            attempt.storescu_output += f"; {verification.summary()}"
        return _Sent(
            project,
            ",".join(mapping["StudyInstanceUID"].values()),
            sorted(result.written),
            _first_header(sorted(result.written)) if result.written else {},
            manifest,
            verification,
            queued,
            cleaned,
        )

    def _clean_pixels(  # type: ignore[no-untyped-def]
        self, sending: list[SeriesPlan], jobs, result, manifest, pixel_settings, attempt: Attempt
    ) -> int:
        """Burned-in text out of the de-identified files of the CHECKBURNEDINFO series; a file
        that fails the verification is deleted and held back (the rest of its series goes).
        Returns the number of files cleaned."""
        plans = [p for p in sending if p.clean_pixels]
        if not plans:
            return 0
        written = set(result.written)
        by_series: dict[str, tuple[SeriesPlan, list[Path]]] = {}
        out_of = dict(jobs)
        for plan in plans:
            outs = [out_of[f] for f in plan.files if f in out_of and out_of[f] in written]
            by_series[plan.series_uid] = (plan, outs)
        headers = [dcmread(p.files[0], stop_before_pixels=True) for p in plans if p.files]
        terms = Terms.build(headers, pixel_settings, _study_identifiers(sending))
        paths = [o for _, outs in by_series.values() for o in outs]
        scratch = self.work_root / f".ocr-{os.getpid()}"  # removed with the work folder
        try:
            outcome = dict(clean_files(paths, terms, pixel_settings, self.processes, scratch))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        cleaned = regions = 0
        for plan, outs in by_series.values():
            held = [(o, outcome[o]) for o in outs if outcome[o].reason]
            ok = [outcome[o] for o in outs if not outcome[o].reason]
            cleaned += len(ok)
            regions += sum(r.regions for r in ok)
            for path, _ in held:  # never sent with text in it: gone from the work folder
                path.unlink(missing_ok=True)
                result.written.remove(path)
                new_sop = path.name.split(".", 1)[1].removesuffix(".dcm")
                for sops in manifest.series.values():
                    if new_sop in sops:
                        sops.remove(new_sop)
            if held:
                reasons = sorted({r.reason for _, r in held})
                attempt.held_back.append(
                    f"{plan.series_uid} ({plan.description}): {len(held)} of {len(outs)} "
                    f"image(s) held back: {'; '.join(reasons)}"
                )
        total = sum(len(o) for _, o in by_series.values())
        attempt.rewritepixel.append(
            f"{cleaned} file(s) cleaned of burned-in text ({ENGINE_NAME}), {regions} region(s) "
            f"masked, {total - cleaned} held back"
        )
        log.info(  # counts only: the text found is identifying
            "burned-in text cleaned",
            extra={"files": total, "cleaned": cleaned, "regions": regions, "held": total - cleaned},
        )
        return cleaned

    # -- outcomes ---------------------------------------------------------------------------

    def _write_tracker(self, transfer: Transfer | None, **values: Any) -> bool:
        if transfer is None:
            return True
        for key, value in values.items():
            setattr(transfer, key, value)
        try:
            self.tracker.update_transfer(transfer)
        except TrackerError as exc:
            log.error(
                "tracker update failed",
                extra={"study": transfer.study_instance_uid, "error": str(exc)},
            )
            return False
        return True

    def _finish_sent(
        self,
        request: Request,
        transfer: Transfer,
        attempt: Attempt,
        sent: _Sent,
        start: float,
        state: RetryState,
    ) -> str:
        held = bool(attempt.held_back)
        if held:
            attempt.error = f"{len(attempt.held_back)} series held back"
        ok = self._write_tracker(
            transfer,
            transfer_date=now_text(),
            transfer_mapped_uid=sent.mapped_uid,
            # pixel anonymization performed: FIONA's transfer_error___3, not an error
            transfer_error=({ERROR_ANONYMIZATION} if held else set())
            | ({PIXELS_ANONYMIZED} if sent.pixels_cleaned else set()),
            # a success that dropped objects says which in its record (not an error to act on)
            transfer_error_message=attempt.message()
            if held or attempt.dropped or attempt.rewritepixel
            else "",
            transfer_active_proc_time=f"{time.monotonic() - start:.1f}",
            transfers_complete=COMPLETE_ERROR
            if held
            else (COMPLETE_PENDING if sent.queued else COMPLETE_OK),
        )
        if not ok:  # sent, but not recorded: send again later (same UIDs, no duplicates)
            self.queue.defer(
                request.path,
                RetryState(
                    0,
                    time.time() + self.sending.retry_base_seconds,
                    "tracker update failed after sending",
                ),
            )
            return "deferred"
        self._mirror(request, sent)
        self._record_verification(request, transfer, sent)
        if held:
            error = attempt.error + ": " + "; ".join(attempt.held_back)
            record = self._record(request, error, None, "held_back", state.attempts + 1)
            self.queue.fail(request.path, record)
        else:
            self.queue.done(request.path)
        log.info(
            "study sent",
            extra={
                "study": request.study_uid,
                "project": request.project,
                "files": len(sent.files),
                "held_back": len(attempt.held_back),
                "dropped": len(attempt.dropped),
                "seconds": round(time.monotonic() - start, 1),
            },
        )
        return "failed" if held else "sent"

    def _record_verification(self, request: Request, transfer: Transfer, sent: _Sent) -> None:
        """The sent manifest (for the reconciliation) and the PACS's answer (the tracker);
        the transfer is sent either way, so a failure here is logged, not fatal."""
        try:
            write_manifest(self.cfg.paths, request.path.stem, sent.manifest)
        except OSError as exc:
            log.error(
                "sent manifest not written", extra={"file": request.name, "error": exc.strerror}
            )
        if sent.verification is None:
            return
        check = pacs_check(transfer, sent.manifest, sent.verification)
        check.ids7_resend_date = str(request.row.get(QUEUED_KEY) or "")  # a reconciliation's resend
        try:
            self.tracker.record_pacs_check(check)
        except TrackerError as exc:
            log.error(
                "verification not recorded", extra={"study": request.study_uid, "error": str(exc)}
            )
        notify.emit_check(self.cfg, transfer, check)

    def _mirror(self, request: Request, sent: _Sent) -> None:
        """Imaging records and review inventory: useful, not essential; a failure is logged."""
        header = sent.header
        record = ImagingRecord(
            sent.mapped_uid,
            request.event,
            str(header.get("StudyDate", "")),
            str(header.get("StudyDescription", "")),
        )
        try:
            self.tracker.record_imaging(sent.project, request.participant, record)
        except TrackerError as exc:
            log.error(
                "imaging record not written", extra={"study": request.study_uid, "error": str(exc)}
            )
        try:
            record_files(self.cfg.paths.review_inventory(sent.project.name), sent.files)
        except OSError as exc:
            log.error(
                "review inventory not updated",
                extra={"project": sent.project.name, "error": str(exc)},
            )

    def _finish_failed(
        self,
        request: Request,
        transfer: Transfer | None,
        attempt: Attempt,
        start: float,
        state: RetryState,
        exc: Permanent,
    ) -> str:
        self._write_tracker(
            transfer,
            transfer_error={ERROR_ANONYMIZATION},
            transfer_error_message=attempt.message(),
            transfer_active_proc_time=f"{time.monotonic() - start:.1f}",
            transfers_complete=COMPLETE_ERROR,
        )
        record = self._record(request, attempt.error, exc, exc.reason, state.attempts + 1)
        self.queue.fail(request.path, record)
        log.error(
            "request failed",
            extra={
                "file": request.name,
                "study": request.study_uid,
                "project": request.project,
                "reason": exc.reason,
                "error": attempt.error,
            },
        )
        return "failed"

    def _defer(
        self,
        request: Request,
        transfer: Transfer | None,
        attempt: Attempt,
        state: RetryState,
        start: float,
        exc: Retry,
    ) -> str:
        s = self.sending
        attempts = state.attempts + 1
        final = attempts >= s.max_attempts
        if not final:
            delay = s.delay(attempts)
            attempt.error += f" (attempt {attempts} of {s.max_attempts}; next try in {delay:.0f} s)"
        else:
            attempt.error += f" (attempt {attempts} of {s.max_attempts}; giving up)"
        self._write_tracker(
            transfer,
            transfer_error={ERROR_SEND} if attempt.storescu_return_code else {ERROR_ANONYMIZATION},
            transfer_error_message=attempt.message(),
            transfer_active_proc_time=f"{time.monotonic() - start:.1f}",
            transfers_complete=COMPLETE_ERROR,
        )
        log.error(
            "request not sent",
            extra={
                "file": request.name,
                "study": request.study_uid,
                "project": request.project,
                "reason": exc.reason,
                "error": attempt.error,
            },
        )
        if final:
            self.queue.fail(
                request.path, self._record(request, attempt.error, exc, exc.reason, attempts)
            )
            return "failed"
        self.queue.defer(request.path, RetryState(attempts, time.time() + delay, attempt.error))
        return "deferred"


@dataclass
class _Sent:
    project: Project
    mapped_uid: str
    files: list[Path]
    header: Any
    manifest: SentManifest
    verification: Verification | None
    queued: bool = False  # packaged for sendFiles, not yet delivered
    pixels_cleaned: int = 0  # files cleaned of burned-in text (deid/pixels.py)


def _resend_only(request: Request) -> set[str] | None:
    """The de-identified SOP UIDs a reconciliation asked to send again; None: send all."""
    value = request.row.get(RESEND_KEY)
    if not value:
        return None
    if not isinstance(value, list):
        raise Permanent("request_file", f"{request.name}: {RESEND_KEY} is not a list of UIDs")
    return {str(v) for v in value}


def _study_identifiers(plans: list[SeriesPlan]) -> Identifiers:
    """The identifying values of the study, from the first image of each series (per-file UIDs
    are added by the batch from each file itself)."""
    headers = []
    for plan in plans:
        if plan.files:
            headers.append(dcmread(plan.files[0], stop_before_pixels=True))
    return collect_identifiers(headers)


def _first_header(files: list[Path]) -> Any:
    return dcmread(
        files[0], stop_before_pixels=True, specific_tags=["StudyDate", "StudyDescription"]
    )


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name
