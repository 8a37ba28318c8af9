"""File one archived instance into FIONA's derived trees.

For each archive file: raw/<Study>/<Series>/<SOP> symlink, the series JSON (classified),
participants/<PatientID>/<Date>_<Time> -> raw/<Study>, srs/ for SR, and the series job
in .arrived. Everything here is derived from the archive and can be rebuilt from it.
A file that is not DICOM is moved to site/broken/ with a .reason file beside it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from fionagw.classify import Connection, NotDicomError, RuleSet, read_header, update_series
from fionagw.config import SiteConfig
from fionagw.ops.atomic import touch, write_json_atomic
from fionagw.paths import clean_job_field, safe_component, safe_uid

log = logging.getLogger("fionagw.organize")


@dataclass
class Outcome:
    path: Path
    ok: bool
    study_uid: str = ""
    series_uid: str = ""
    reason: str = ""


def symlink_atomic(target: Path, link: Path) -> None:
    """Point ``link`` at ``target``, replacing whatever link was there, without a gap."""
    try:
        if os.readlink(link) == str(target):
            return
    except FileNotFoundError:
        pass
    except OSError:
        pass  # not a link: replaced below
    tmp = link.with_name(f".tmp-{os.getpid()}-{link.name}")
    try:
        os.symlink(target, tmp)
    except FileExistsError:
        os.unlink(tmp)
        os.symlink(target, tmp)
    os.replace(tmp, link)


@dataclass
class _PendingSeries:
    """Work for one series not yet on disk: the merged record and the links to create."""

    record: dict
    since: float
    on_disk: set[str]  # SOPs linked in the series folder when this batch began
    links: dict[str, Path] = field(default_factory=dict)  # SOP -> archive file
    srs: list[tuple[Path, Path]] = field(default_factory=list)
    job: Path | None = None


class Organizer:
    """Single writer of raw/, participants/, srs/ and the series JSON of one site.

    Writes are batched per series (write-behind): rewriting a growing series JSON for every
    image would cost more than classifying it. Order makes this crash-safe: the series JSON
    is written first and the raw/ links after it, so an image whose link is missing after a
    crash is simply processed again by the reconcile pass (the merge is idempotent per SOP).
    """

    CACHE_SERIES = 256
    FLUSH_AFTER_S = 0.5
    FLUSH_AFTER_IMAGES = 200

    def __init__(self, cfg: SiteConfig, rules: RuleSet, *, touch_jobs: bool = True) -> None:
        self.cfg = cfg
        self.touch_jobs = touch_jobs  # off for rebuild: old studies must not look newly arrived
        self.paths = cfg.paths
        self.rules = rules
        # Series records on disk, keyed by JSON path, validated by (mtime_ns, size) so that
        # another writer (detectStudyArrival's recount) is noticed.
        self._series: OrderedDict[Path, tuple[tuple[int, int], dict]] = OrderedDict()
        self._pending: dict[Path, _PendingSeries] = {}
        self._linked_studies: set[tuple[str, str]] = set()

    # -- series JSON -------------------------------------------------------------------

    def _load_series(self, path: Path) -> dict | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            self._series.pop(path, None)
            return None
        key = (st.st_mtime_ns, st.st_size)
        cached = self._series.get(path)
        if cached and cached[0] == key:
            self._series.move_to_end(path)
            return cached[1]
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("series JSON unreadable, rebuilding it", extra={"file": str(path), "reason": str(exc)})
            return None
        return record if isinstance(record, dict) else None

    def _store_series(self, path: Path, record: dict) -> None:
        write_json_atomic(path, record, tmpdir=self.paths.temp)
        st = path.stat()
        self._series[path] = ((st.st_mtime_ns, st.st_size), record)
        self._series.move_to_end(path)
        while len(self._series) > self.CACHE_SERIES:
            self._series.popitem(last=False)

    @property
    def pending(self) -> int:
        return sum(len(p.links) for p in self._pending.values())

    def flush(self, *, force: bool = True) -> int:
        """Write due series JSON, then their links; return the number of images flushed."""
        now = time.monotonic()
        done = 0
        for json_path in list(self._pending):
            p = self._pending[json_path]
            if not force and now - p.since < self.FLUSH_AFTER_S and len(p.links) < self.FLUSH_AFTER_IMAGES:
                continue
            del self._pending[json_path]
            self._store_series(json_path, p.record)
            series_dir = json_path.with_suffix("")
            for sop, target in p.links.items():
                link = series_dir / sop
                try:
                    os.symlink(target, link)
                except FileExistsError:
                    symlink_atomic(target, link)  # a resent instance: point at the new file
            for target, link in p.srs:
                symlink_atomic(target, link)
            if p.job is not None:
                touch(p.job)
            done += len(p.links)
        return done

    # -- one file ----------------------------------------------------------------------

    def process(self, path: Path, connection: Connection) -> Outcome:
        try:
            ds = read_header(path)
        except FileNotFoundError:
            log.warning("file vanished before it could be processed", extra={"file": str(path)})
            return Outcome(path, False, reason="file not found")
        except NotDicomError as exc:
            self.move_aside(path, str(exc))
            return Outcome(path, False, reason=str(exc))

        try:
            study = safe_uid(str(ds.StudyInstanceUID))
            series = safe_uid(str(ds.SeriesInstanceUID))
            sop = safe_uid(str(ds.SOPInstanceUID))
        except ValueError as exc:
            self.move_aside(path, f"broken: {exc}")
            return Outcome(path, False, reason=str(exc))
        series_dir = self.paths.raw_series_dir(study, series)
        json_path = self.paths.series_json(study, series)
        pending = self._pending.get(json_path)
        if pending is None:
            series_dir.mkdir(parents=True, exist_ok=True)
            on_disk = {e.name for e in os.scandir(series_dir) if not e.name.startswith(".")}
            pending = _PendingSeries({}, time.monotonic(), on_disk)
        new = {s for s in pending.links if s not in pending.on_disk} | ({sop} - pending.on_disk)
        stored = pending.record if json_path in self._pending else self._load_series(json_path)
        record = update_series(stored, ds, connection, self.rules, len(pending.on_disk) + len(new))
        pending.record = record
        pending.links[sop] = path.resolve()
        self._pending[json_path] = pending

        self._link_participant(ds, study)
        if str(ds.get("Modality", "")) == "SR":
            manufacturer = safe_component(str(ds.get("Manufacturer", "") or "_"))
            srs_dir = self.paths.srs / manufacturer / study
            srs_dir.mkdir(parents=True, exist_ok=True)
            pending.srs.append((series_dir / sop, srs_dir / sop))
        if self.touch_jobs:
            pending.job = self.paths.series_job(connection.calling, connection.called, connection.ip,
                                                study, series)
        return Outcome(path, True, study, series)

    def _link_participant(self, ds: object, study: str) -> None:
        patient = safe_component(str(getattr(ds, "PatientID", "") or "unknown"))
        key = (patient, study)
        if key in self._linked_studies:
            return
        date = str(getattr(ds, "StudyDate", "") or "unknown")
        tod = str(getattr(ds, "StudyTime", "") or "unknown")
        folder = self.paths.participants / patient
        folder.mkdir(parents=True, exist_ok=True)
        symlink_atomic(self.paths.raw_study_dir(study), folder / safe_component(f"{date}_{tod}"))
        self._linked_studies.add(key)
        if len(self._linked_studies) > 10000:
            self._linked_studies.clear()

    def move_aside(self, path: Path, reason: str) -> Path | None:
        """Move a broken file out of the archive into site/broken/, keeping its folder name."""
        try:
            rel = path.resolve().relative_to(self.paths.archive.resolve())
        except ValueError:
            rel = Path(path.name)
        dest = self.paths.broken / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest = dest.with_name(f"{dest.name}.{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            if path.resolve().is_relative_to(self.paths.archive.resolve()):
                os.replace(path, dest)
            else:
                shutil.copy2(path, dest)  # never delete a file we do not own
        except OSError as exc:
            log.error("broken file could not be moved aside",
                      extra={"file": str(path), "reason": reason, "error": str(exc)})
            return None
        dest.with_name(dest.name + ".reason").write_text(reason + "\n")
        log.error("not a readable DICOM file: moved aside",
                  extra={"file": str(path), "moved_to": str(dest), "reason": reason})
        return dest


def parse_pipe_line(line: str) -> tuple[Connection, Path] | None:
    """FIONA's pipe protocol: 'calling,called,ip,dir,file' or a bare path; None if invalid."""
    line = line.replace("\0", "").rstrip("\r\n")
    if not line.strip():
        return None
    fields = line.split(",")
    if len(fields) == 5:
        calling, called, ip, directory, name = fields
        return Connection(_clean_ae(calling), _clean_ae(called), ip.strip() or "0.0.0.0"), Path(directory) / name
    if len(fields) == 1:
        return Connection("unknown", "unknown", "unknown"), Path(fields[0])
    return None


def _clean_ae(value: str) -> str:
    return clean_job_field(value.replace("\\", ""))
