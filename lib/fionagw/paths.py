"""Every on-disk path of the FIONA DATADIR layout, in one place.

    DATADIR/config/enabled                                   switch file (1st char: receiver)
    DATADIR/site/archive/scp_<Study>/<MOD>.<SOP>             received bytes (the only copy)
    DATADIR/site/raw/<Study>/<Series>/<SOP> -> archive file   symlinks
    DATADIR/site/raw/<Study>/<Series>.json                    series summary
    DATADIR/site/participants/<PatientID>/<Date>_<Time> -> raw/<Study>
    DATADIR/site/srs/<Manufacturer|_>/<Study>/<SOP> -> raw link   (SR only)
    DATADIR/site/.arrived/"<calling> <called> <ip> scp_<Study>"          study job
    DATADIR/site/.arrived/"<calling> <called> <ip> <Study> <Series>"     series job
    DATADIR/site/broken/          files that are not DICOM or cannot be read
    DATADIR/site/temp/            temp files for atomic writes (same filesystem)
    DATADIR/quarantine/           <Study>_<Series>.{tgz,md5sum,json}
    DATADIR/site/incoming.txt     studies waiting for assignment ("<epoch> ..." lines)
    DATADIR/events/               study-arrived and later events, one JSON file each
    DATADIR/tracker/tracker.sqlite  the local tracker (embedded default)
    DATADIR/transfer_requests/, transfers_done/, transfers_fail/   FIONA's request files
    DATADIR/review/<PROJECT>.json tags and values sent for the project (Review page)
    DATADIR/logs/<component>.log  JSON lines
    DATADIR/.pids/<component>.pid

FIONA keeps its FIFO in /tmp (/tmp/.processSingleFilePipe<site>); we keep it under
DATADIR/site so two gateways on one machine can never share a pipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NOT_UID = re.compile(r"[^0-9A-Za-z._-]")
MAX_UID_COMPONENT = 128  # a UID has at most 64 characters; leave room under NAME_MAX


def safe_uid(value: str) -> str:
    """A UID from the data as a path component that cannot escape its folder.

    Valid UIDs (digits and dots) come back unchanged; anything else becomes ``_``. The
    archive, raw/ and the reconcile pass all name files through this one function, so a
    strange UID maps to the same name everywhere. ValueError for an unusable value.
    """
    cleaned = _NOT_UID.sub("_", value.strip("\0 "))[:MAX_UID_COMPONENT]
    if not cleaned.strip("."):
        raise ValueError(f"unusable UID {value!r}")
    return cleaned


_UNSAFE = str.maketrans({"/": "_", "\0": "", "\\": "_"})


def safe_component(value: str) -> str:
    """A value from the data (UID, PatientID) made safe as one path component.

    DICOM data is input from outside: a UID such as "../../etc" must never leave its folder.
    """
    value = value.strip().translate(_UNSAFE)
    if value in ("", ".", ".."):
        return "unknown" if not value else value.replace(".", "_")
    return value[:200]


def clean_job_field(value: str) -> str:
    """FIONA strips quotes from job-name fields; we also drop what a file name cannot hold."""
    return value.replace('"', "").replace("/", "").replace("\0", "").replace(" ", "") or "unknown"


@dataclass(frozen=True)
class SitePaths:
    datadir: Path
    site: str = ""
    fifo_override: Path | None = None

    @property
    def config_dir(self) -> Path:
        return self.datadir / "config"

    @property
    def enabled_file(self) -> Path:
        return self.config_dir / "enabled"

    @property
    def site_dir(self) -> Path:
        return self.datadir / "site"

    @property
    def archive(self) -> Path:
        return self.site_dir / "archive"

    @property
    def raw(self) -> Path:
        return self.site_dir / "raw"

    @property
    def participants(self) -> Path:
        return self.site_dir / "participants"

    @property
    def srs(self) -> Path:
        return self.site_dir / "srs"

    @property
    def arrived(self) -> Path:
        return self.site_dir / ".arrived"

    @property
    def broken(self) -> Path:
        return self.site_dir / "broken"

    @property
    def temp(self) -> Path:
        return self.site_dir / "temp"

    @property
    def quarantine(self) -> Path:
        return self.datadir / "quarantine"

    @property
    def incoming_list(self) -> Path:
        """Studies waiting for assignment (FIONA: applications/Assign/incoming.txt)."""
        return self.site_dir / "incoming.txt"

    @property
    def events(self) -> Path:
        """Event records (study-arrived, ...) for QC and notifications, one JSON file each."""
        return self.datadir / "events"

    @property
    def tracker_db(self) -> Path:
        """The local tracker's SQLite database."""
        return self.datadir / "tracker" / "tracker.sqlite"

    @property
    def transfer_requests(self) -> Path:
        return self.datadir / "transfer_requests"

    @property
    def transfers_done(self) -> Path:
        return self.datadir / "transfers_done"

    @property
    def transfers_fail(self) -> Path:
        return self.datadir / "transfers_fail"

    @property
    def keys(self) -> Path:
        """Per-project de-identification keys (back them up: pseudonyms depend on them)."""
        return self.datadir / "keys"

    @property
    def review(self) -> Path:
        return self.datadir / "review"

    def review_inventory(self, project: str) -> Path:
        """The tags and values sent for ``project`` (the Review page's data)."""
        return self.review / f"{safe_component(project)}.json"

    @property
    def logs(self) -> Path:
        return self.datadir / "logs"

    @property
    def pids(self) -> Path:
        return self.datadir / ".pids"

    @property
    def fifo(self) -> Path:
        return self.fifo_override or self.site_dir / f".processSingleFilePipe{self.site}"

    def create(self) -> None:
        for d in (
            self.config_dir,
            self.archive,
            self.raw,
            self.participants,
            self.srs,
            self.arrived,
            self.broken,
            self.temp,
            self.quarantine,
            self.logs,
            self.pids,
            self.events,
            self.tracker_db.parent,
            self.transfer_requests,
            self.transfers_done,
            self.transfers_fail,
        ):
            d.mkdir(parents=True, exist_ok=True)

    # --- per-object paths -------------------------------------------------------------

    def pidfile(self, component: str) -> Path:
        return self.pids / f"{component}{self.site}.pid"

    def logfile(self, component: str) -> Path:
        return self.logs / f"{component}{self.site}.log"

    def archive_study_dir(self, study_uid: str) -> Path:
        return self.archive / f"scp_{study_uid}"

    def raw_study_dir(self, study_uid: str) -> Path:
        return self.raw / study_uid

    def raw_series_dir(self, study_uid: str, series_uid: str) -> Path:
        return self.raw / study_uid / series_uid

    def series_json(self, study_uid: str, series_uid: str) -> Path:
        return self.raw / study_uid / f"{series_uid}.json"

    def study_job(self, calling: str, called: str, ip: str, study_uid: str) -> Path:
        name = " ".join((clean_job_field(calling), clean_job_field(called), clean_job_field(ip)))
        return self.arrived / f"{name} scp_{study_uid}"

    def series_job(
        self, calling: str, called: str, ip: str, study_uid: str, series_uid: str
    ) -> Path:
        name = " ".join((clean_job_field(calling), clean_job_field(called), clean_job_field(ip)))
        return self.arrived / f"{name} {study_uid} {series_uid}"
