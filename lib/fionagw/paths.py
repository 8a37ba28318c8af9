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
    DATADIR/transfer_requests/.state/   retry state of queued requests
    DATADIR/review/<PROJECT>.json tags and values sent for the project (Review page)
    DATADIR/keys/<PROJECT>.key    per-project de-identification keys (mode 0600)
    DATADIR/mappings/<PROJECT>/<name>.json   original -> new UIDs of a transfer (mode 0600)
    DATADIR/outbox/               the embedded default destination (a folder)
    DATADIR/packages/<dest>/      sftp/https packages: outbox/, sent/, failed/ (sendFiles)
    DATADIR/uploads/<id>/         web uploads (metadata.json, files/); .staging/<id> while incoming
    DATADIR/web/users.db, web/secret_key   web accounts and sessions, the cookie signing key
    DATADIR/workflows/workflow_joblist.jobs   Workflows jobs (JSON lines, FIONA's keys + ours)
    DATADIR/workflows/<project>/datajob_<n>_<image>_/   one job: input/, output/, job.log
    DATADIR/logs/<component>.log  JSON lines
    DATADIR/.pids/<component>.pid, <job>.lock, <job>.last.json,
                                  fiona-run.json, metrics.json

FIONA keeps its FIFO in /tmp (/tmp/.processSingleFilePipe<site>); we keep it under
DATADIR/site so two gateways on one machine can never share a pipe.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fionagw.ops.perms import KEY_DIR_MODE, group_id, make_dirs, share_with_group

# The checkout (repository root): bin/, config/, cron/ and php-free-web/ are found from here.
CHECKOUT = Path(__file__).resolve().parents[2]
BIN_DIR = CHECKOUT / "bin"
CONFIG_DIR = CHECKOUT / "config"
CRONTAB = CHECKOUT / "cron" / "fiona.crontab"

JOB_STATE_SUFFIX = ".last.json"
ARCHIVE_PREFIX = "scp_"  # archive/scp_<StudyUID>: FIONA's name for a study folder

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


def archive_study_uid(folder_name: str) -> str | None:
    """The Study Instance UID of an archive folder name ``scp_<UID>``, else None."""
    if folder_name.startswith(ARCHIVE_PREFIX) and len(folder_name) > len(ARCHIVE_PREFIX):
        return folder_name[len(ARCHIVE_PREFIX) :]
    return None


def _job_uid_ok(value: str) -> bool:
    """Job names become paths: only what safe_uid leaves unchanged (no '..', no '/')."""
    try:
        return safe_uid(value) == value and value not in (".", "..")
    except ValueError:
        return False


def parse_job_name(name: str) -> tuple[str, str, str, str, str] | None:
    """The inverse of :meth:`SitePaths.study_job` / :meth:`SitePaths.series_job`:
    (calling, called, ip, StudyUID, SeriesUID or "" for a study job), or None."""
    parts = name.split(" ")
    if len(parts) == 5 and all(parts) and _job_uid_ok(parts[3]) and _job_uid_ok(parts[4]):
        return parts[0], parts[1], parts[2], parts[3], parts[4]
    if len(parts) == 4:
        study_uid = archive_study_uid(parts[3])
        if study_uid is not None and _job_uid_ok(study_uid):
            return parts[0], parts[1], parts[2], study_uid, ""
    return None


def clean_job_field(value: str) -> str:
    """FIONA strips quotes from job-name fields; we also drop what a file name cannot hold."""
    return value.replace('"', "").replace("/", "").replace("\0", "").replace(" ", "") or "unknown"


@dataclass(frozen=True)
class SitePaths:
    datadir: Path
    site: str = ""
    fifo_override: Path | None = None
    group: str = ""  # DATADIR_GROUP: the layout's folders are shared with it (setgid)

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
    def sent_manifests(self) -> Path:
        """What each transfer sent (de-identified series and SOP UIDs): what reconciliation
        asks the research PACS for, and what a resend of missing instances picks from."""
        return self.datadir / "transfers_sent"

    @property
    def qc(self) -> Path:
        """The quality-control result of each study (qc/store.py)."""
        return self.datadir / "qc"

    def qc_result(self, study_uid: str) -> Path:
        return self.qc / f"{safe_uid(study_uid)}.json"

    def sent_manifest(self, request_name: str) -> Path:
        return self.sent_manifests / f"{request_name}.json"

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
    def request_state(self) -> Path:
        """Retry state (attempts, next try) of queued transfer requests."""
        return self.transfer_requests / ".state"

    def transfer_request(self, name: str) -> Path:
        return self.transfer_requests / f"{name}.json"

    def project_key(self, project: str) -> Path:
        return self.keys / f"{safe_component(project)}.key"

    @property
    def mappings(self) -> Path:
        """mapping.json of each transfer: it re-identifies, so it never leaves the gateway."""
        return self.datadir / "mappings"

    def mapping_file(self, project: str, name: str) -> Path:
        return self.mappings / safe_component(project) / f"{safe_component(name)}.json"

    @property
    def outbox(self) -> Path:
        """The embedded default destination: de-identified studies as files."""
        return self.datadir / "outbox"

    def packages(self, destination: str, state: str = "outbox") -> Path:
        """sendFiles' packages for an sftp/https destination: ``outbox`` (to deliver), ``sent``
        (delivered and verified), ``failed`` (gave up; an operator moves them back)."""
        return self.datadir / "packages" / safe_component(destination) / state

    @property
    def send_work(self) -> Path:
        """anonymizeAndSend's working folders, one per request (removed after the send)."""
        return self.temp / "anonymizeAndSend"

    @property
    def uploads(self) -> Path:
        return self.datadir / "uploads"

    @property
    def upload_staging(self) -> Path:
        """Uploads being received (a folder per upload id) before they are accepted."""
        return self.uploads / ".staging"

    def upload_dir(self, upload_id: str) -> Path:
        return self.uploads / upload_id

    def upload_record(self, upload_id: str) -> Path:
        """What an upload brought, stored and skipped (the Attach page's result)."""
        return self.upload_dir(upload_id) / "metadata.json"

    def upload_files(self, upload_id: str) -> Path:
        """Files of an upload that are kept as they came (NIfTI sets)."""
        return self.upload_dir(upload_id) / "files"

    def upload_staging_files(self, upload_id: str) -> Path:
        return self.upload_staging / upload_id / "files"

    @property
    def web(self) -> Path:
        return self.datadir / "web"

    @property
    def web_users(self) -> Path:
        """Web accounts, roles, sessions and login counters (SQLite)."""
        return self.web / "users.db"

    @property
    def web_secret_key(self) -> Path:
        """The key that signs the web pages' cookies (mode 0600)."""
        return self.web / "secret_key"

    @property
    def logs(self) -> Path:
        return self.datadir / "logs"

    @property
    def workflows(self) -> Path:
        return self.datadir / "workflows"

    @property
    def workflow_jobs(self) -> Path:
        """FIONA's php/workflow_joblist.jobs: one JSON object per job."""
        return self.workflows / "workflow_joblist.jobs"

    def workflow_job_dir(self, project: str, folder: str) -> Path:
        """The folder of one job (``folder``: FIONA's ``datajob_<n>_<image>_``)."""
        return self.workflows / safe_component(project or "_") / safe_component(folder)

    @property
    def pids(self) -> Path:
        return self.datadir / ".pids"

    @property
    def fifo(self) -> Path:
        return self.fifo_override or self.site_dir / f".processSingleFilePipe{self.site}"

    # -- query/retrieve and MPPS (pacs/): created when first used -------------------------

    @property
    def inventory(self) -> Path:
        """getAllPatients: what each PACS source holds, DATADIR/inventory/<source>.json."""
        return self.datadir / "inventory"

    @property
    def active_scans(self) -> Path:
        """Studies moveFromScanner completes from the PACS (one file per StudyUID)."""
        return self.datadir / "active-scans"

    @property
    def finished_scans(self) -> Path:
        return self.datadir / "finished-scans"

    @property
    def failed_scans(self) -> Path:
        return self.datadir / "failed-scans"

    @property
    def scanner(self) -> Path:
        """The MPPS receiver's records, one JSON file per performed procedure step."""
        return self.datadir / "scanner"

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
            self.request_state,
            self.review,
            self.uploads,
            self.web,
            self.workflows,
        ):
            make_dirs(d)
            if self.group:
                share_with_group(d, group_id(self.group))
        make_dirs(self.keys, KEY_DIR_MODE)

    # --- per-object paths -------------------------------------------------------------

    def pidfile(self, component: str) -> Path:
        return self.pids / f"{component}{self.site}.pid"

    def lock(self, job: str) -> Path:
        """The non-blocking lock of a cron job (or of a shared file such as the incoming list)."""
        return self.pids / f"{job}{self.site}.lock"

    def job_state(self, job: str) -> Path:
        """The last run of a cron job (start, end, outcome), for status and metrics."""
        return self.pids / f"{job}{self.site}{JOB_STATE_SUFFIX}"

    def job_states(self) -> list[tuple[str, Path]]:
        """(job, state file) of every job that recorded a run, sorted by file name."""
        tail = f"{self.site}{JOB_STATE_SUFFIX}"
        return [(p.name[: -len(tail)], p) for p in sorted(self.pids.glob(f"*{tail}"))]

    def state_file(self, name: str) -> Path:
        """A program's own state file (``run`` for fiona run, ``metrics`` for the counters)."""
        return self.pids / f"{name}{self.site}.json"

    def logfile(self, component: str) -> Path:
        return self.logs / f"{component}{self.site}.log"

    def archive_study_dir(self, study_uid: str) -> Path:
        return self.archive / f"{ARCHIVE_PREFIX}{study_uid}"

    def archive_studies(self) -> list[tuple[str, os.DirEntry[str]]]:
        """(StudyUID, folder entry) of every ``archive/scp_<UID>`` folder, in no order.

        Entries that are not folders (or vanish while listed) are skipped; a missing
        archive is empty. Callers stat the entries themselves (only some need mtimes).
        """
        try:
            entries = list(os.scandir(self.archive))
        except FileNotFoundError:
            return []
        out = []
        for entry in entries:
            uid = archive_study_uid(entry.name)
            try:
                if uid is not None and entry.is_dir(follow_symlinks=False):
                    out.append((uid, entry))
            except OSError:
                continue
        return out

    def raw_study_dir(self, study_uid: str) -> Path:
        return self.raw / study_uid

    def raw_series_dir(self, study_uid: str, series_uid: str) -> Path:
        return self.raw / study_uid / series_uid

    def quarantine_base(self, study_uid: str, series_uid: str) -> Path:
        """quarantine/<Study>_<Series> without suffix (.tgz, .md5sum and .json follow it)."""
        return self.quarantine / f"{study_uid}_{series_uid}"

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

    @property
    def notify(self) -> Path:
        """The notification event log and delivery state (notify/)."""
        return self.datadir / "notify"
