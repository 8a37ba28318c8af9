"""File one archived instance into FIONA's derived trees.

For each archive file: raw/<Study>/<Series>/<SOP> symlink, the series JSON (classified),
participants/<PatientID>/<Date>_<Time> -> raw/<Study>, srs/ for SR, and the series job
in .arrived. Everything here is derived from the archive and can be rebuilt from it.
A file that is not DICOM is moved to site/broken/ with a .reason file beside it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from fionagw.classify import Connection, NotDicomError, RuleSet, read_header, update_series
from fionagw.classify.elements import element_value
from fionagw.classify.series import REQUIRED
from fionagw.config import SiteConfig
from fionagw.ops.atomic import touch, write_bytes_atomic
from fionagw.ops.log_filter import safe_exception_text
from fionagw.organize.series_json import SeriesJSONError, SeriesRecord, read_series, write_series
from fionagw.paths import clean_job_field, safe_component, safe_uid

LOGGER = logging.getLogger(__name__)


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

    record: SeriesRecord
    since: float
    on_disk: set[str]  # SOPs linked in the series folder when this batch began
    links: dict[str, Path] = field(default_factory=dict)  # SOP -> archive file
    fresh: set[str] = field(default_factory=set)  # SOPs of this batch not in on_disk
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
        self._series: OrderedDict[Path, tuple[tuple[int, int], SeriesRecord]] = OrderedDict()
        self._pending: dict[Path, _PendingSeries] = {}
        self._linked_studies: set[tuple[str, str]] = set()
        # Small caches of per-image path work (bounded: emptied when full).
        self._series_paths: dict[tuple[str, str], tuple[Path, Path]] = {}
        self._real_dirs: dict[str, str] = {}
        self._jobs: dict[tuple[str, ...], Path] = {}

    # -- series JSON -------------------------------------------------------------------

    def _load_series(self, path: Path) -> SeriesRecord | None:
        """The stored record, or None for a new series or one to build anew from its images."""
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
            return read_series(path)
        except SeriesJSONError as exc:
            LOGGER.warning(
                "series JSON unreadable, rebuilding it",
                extra={"file": str(path), "reason": exc.reason},
            )
            return None

    def _store_series(self, path: Path, record: SeriesRecord) -> None:
        write_series(path, record, tmpdir=self.paths.temp)
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
            if (
                not force
                and now - p.since < self.FLUSH_AFTER_S
                and len(p.links) < self.FLUSH_AFTER_IMAGES
            ):
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
            LOGGER.warning("file vanished before it could be processed", extra={"file": str(path)})
            return Outcome(path, False, reason="file not found")
        except NotDicomError as exc:
            self.move_aside(path, str(exc))
            return Outcome(path, False, reason=str(exc))

        uids = []
        for keyword, tag in REQUIRED:
            try:
                uids.append(safe_uid(str(element_value(ds, tag))))
            except Exception as exc:  # its text may quote the value: name the type only
                reason = f"broken: unusable {keyword} ({type(exc).__name__})"
                self.move_aside(path, reason)
                return Outcome(path, False, reason=reason)
        study, series, sop = uids
        series_dir, json_path = self._paths_of(study, series)
        pending = self._pending.get(json_path)
        if pending is None:
            series_dir.mkdir(parents=True, exist_ok=True)
            on_disk = {e.name for e in os.scandir(series_dir) if not e.name.startswith(".")}
            pending = _PendingSeries({}, time.monotonic(), on_disk)
        fresh = sop not in pending.on_disk and sop not in pending.fresh
        stored = pending.record if json_path in self._pending else self._load_series(json_path)
        record = update_series(
            stored,
            ds,
            connection,
            self.rules,
            len(pending.on_disk) + len(pending.fresh) + int(fresh),
        )
        # Everything that can fail on this file's values comes before the batch takes it, so
        # a file that raises leaves the batch as it was (and goes to broken/, processor.py).
        self._link_participant(ds, study)
        srs_link = None
        if _text_of(ds, 0x00080060) == "SR":  # Modality
            manufacturer = safe_component(_text_of(ds, 0x00080070) or "_")
            srs_dir = self.paths.srs / manufacturer / study
            srs_dir.mkdir(parents=True, exist_ok=True)
            srs_link = (series_dir / sop, srs_dir / sop)

        if fresh:
            pending.fresh.add(sop)
        pending.record = record
        pending.links[sop] = self._real_path(path)
        if srs_link is not None:
            pending.srs.append(srs_link)
        if self.touch_jobs:
            pending.job = self._series_job(connection, study, series)
        self._pending[json_path] = pending
        return Outcome(path, True, study, series)

    def _paths_of(self, study: str, series: str) -> tuple[Path, Path]:
        """(series folder, series JSON) in raw/."""
        paths = self._series_paths.get((study, series))
        if paths is None:
            paths = (
                self.paths.raw_series_dir(study, series),
                self.paths.series_json(study, series),
            )
            _bounded_put(self._series_paths, (study, series), paths)
        return paths

    def _series_job(self, connection: Connection, study: str, series: str) -> Path:
        key = (*connection, study, series)
        job = self._jobs.get(key)
        if job is None:
            job = self.paths.series_job(
                connection.calling, connection.called, connection.ip, study, series
            )
            _bounded_put(self._jobs, key, job)
        return job

    def _real_path(self, path: Path) -> Path:
        """``path.resolve()``, resolving the folder once rather than every component per file."""
        if os.path.islink(path):
            return path.resolve()
        folder, name = os.path.split(os.fspath(path))
        real = self._real_dirs.get(folder)
        if real is None:
            real = os.path.realpath(folder)
            _bounded_put(self._real_dirs, folder, real)
        return Path(real, name)

    def _link_participant(self, ds: Dataset, study: str) -> None:
        patient = safe_component(_text_of(ds, 0x00100020) or "unknown")  # PatientID
        key = (patient, study)
        if key in self._linked_studies:
            return
        date = _text_of(ds, 0x00080020) or "unknown"  # StudyDate
        tod = _text_of(ds, 0x00080030) or "unknown"  # StudyTime
        folder = self.paths.participants / patient
        folder.mkdir(parents=True, exist_ok=True)
        symlink_atomic(self.paths.raw_study_dir(study), folder / safe_component(f"{date}_{tod}"))
        self._linked_studies.add(key)
        if len(self._linked_studies) > 10000:
            self._linked_studies.clear()

    def move_aside(
        self,
        path: Path,
        reason: str,
        *,
        message: str = "not a readable DICOM file: moved aside",
        details: str = "",
    ) -> Path | None:
        """Move a broken file out of the archive into site/broken/, keeping its folder name,
        with ``<name>.reason`` beside it: ``reason`` (no value of the file), then ``details``.
        Out of the archive, the reconcile pass never meets it again."""
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
            LOGGER.error(
                "broken file could not be moved aside",
                extra={"file": str(path), "reason": reason, "error": safe_exception_text(exc)},
            )
            return None
        text = reason + "\n" + (details.rstrip("\n") + "\n" if details else "")
        write_bytes_atomic(dest.with_name(dest.name + ".reason"), text.encode())
        LOGGER.error(message, extra={"file": str(path), "moved_to": str(dest), "reason": reason})
        return dest


def _text_of(ds: Dataset, tag: int) -> str:
    """str() of an element's value; "" when absent, empty or malformed (a wrong VR or length
    must not stop the file: the classifier reads such an element as missing too)."""
    try:
        value = element_value(ds, tag)
    except Exception:
        return ""
    return str(value) if value else ""


def _bounded_put(cache: dict, key: object, value: object, limit: int = 1024) -> None:
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def parse_pipe_line(line: str) -> tuple[Connection, Path] | None:
    """FIONA's pipe protocol: 'calling,called,ip,dir,file' or a bare path; None if invalid."""
    line = line.replace("\0", "").rstrip("\r\n")
    if not line.strip():
        return None
    fields = line.split(",")
    if len(fields) == 5:
        calling, called, ip, directory, name = fields
        return Connection(_clean_ae(calling), _clean_ae(called), ip.strip() or "0.0.0.0"), Path(
            directory
        ) / name
    if len(fields) == 1:
        return Connection("unknown", "unknown", "unknown"), Path(fields[0])
    return None


def _clean_ae(value: str) -> str:
    return clean_job_field(value.replace("\\", ""))
