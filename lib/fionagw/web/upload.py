"""Manual upload (the Attach page): a DICOM folder or a ZIP enters the same pipeline as a
network arrival; a NIfTI set is validated and kept under ``DATADIR/uploads/<id>/``.

The web view stages what the browser sends under ``DATADIR/uploads/.staging/<id>/files``
(:func:`save_file` for a folder, :func:`extract_zip` for a ZIP), then :func:`ingest` sorts
the files:

* DICOM files are committed to ``site/archive/scp_<Study>/<MOD>.<SOP>`` with the receiver's
  own durable commit (:func:`fionagw.receive.store.store_received`) and announced exactly as
  the SCP does (study job in ``.arrived`` + FIFO line, :class:`fionagw.receive.notify.Notifier`)
  with calling AE ``WEBUPLOAD``, our AE title as called AE and ip 127.0.0.1. processSingleFile
  and detectStudyArrival then treat them like any network arrival (Assign shows the study).
* Metadata (study description, accession number, patient age and sex) comes from the form,
  else from a JSON sidecar in the upload, else stays as the DICOM header has it: the stored
  header is only changed where the form or the sidecar gives a value.
* A NIfTI set (``.nii``/``.nii.gz`` + ``.bvec`` + ``.bval`` + ``.json`` of one base name) is
  checked (header readable, volumes = b-values = b-vector columns) and stored with a
  ``metadata.json``. Converting NIfTI into DICOM is not done (yet): such uploads are listed
  with the status "stored".
* Anything else is reported back by name, never silently dropped.

ZIP safety (:func:`check_zip`): absolute names, ``..``, symlink entries, encrypted entries,
nested archives, more than ``max_entries`` entries or more than ``max_bytes`` decompressed
are refused with one clear line; sizes are enforced while extracting, whatever the central
directory claims.

Every upload gets ``DATADIR/uploads/<id>/metadata.json`` (what came, what was stored, what
was left out), which the Attach page lists. No patient name or ID is logged.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import secrets
import shutil
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pydicom
from pydicom.dataset import FileMetaDataset

from fionagw.config import SiteConfig
from fionagw.ops.atomic import write_json_atomic
from fionagw.receive import store
from fionagw.receive.notify import Notifier

log = logging.getLogger("fionagw.web.upload")

CALLING_AE = "WEBUPLOAD"  # the calling AE title uploads are filed under (.arrived, series JSON)
UPLOAD_IP = "127.0.0.1"
MAX_ENTRIES = 100_000
CHUNK = 1 << 20
_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$")
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # DICOMDIR
_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")

# Names and leading bytes of archives: an archive inside the upload is refused, not unpacked.
_ARCHIVE_SUFFIXES = (
    ".zip",
    ".tar",
    ".tgz",
    ".tar.gz",
    ".gz",
    ".bz2",
    ".tbz2",
    ".xz",
    ".txz",
    ".7z",
    ".rar",
    ".zst",
    ".lz",
    ".lzma",
    ".cab",
    ".jar",
)
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\x28\xb5\x2f\xfd",
)


class UploadError(Exception):
    """A refused upload; str() is one line for the user naming what is wrong and where.

    The text can hold file names and metadata values (a CD's folder may be named after the
    patient), so logs get ``kind``, a fixed phrase, instead."""

    def __init__(self, message: str, kind: str = "refused") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int  # decompressed total of one upload
    max_entries: int = MAX_ENTRIES

    @classmethod
    def from_mb(cls, mb: int, max_entries: int = MAX_ENTRIES) -> UploadLimits:
        return cls(mb * 1024 * 1024, max_entries)


class Budget:
    """Bytes and files an upload may still use; raises UploadError when it runs out."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.bytes = 0
        self.entries = 0

    def add_entry(self, name: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise UploadError(
                f"more than {self.limits.max_entries} files in one upload "
                f"(at {name}): split it into smaller uploads",
                "too many files",
            )

    def add_bytes(self, n: int, name: str) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_bytes:
            raise UploadError(
                f"upload is larger than the limit of {_mb(self.limits.max_bytes)} "
                f"when unpacked (at {name}): split it into smaller uploads",
                "too large",
            )


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


# --- names ----------------------------------------------------------------------------------


def safe_relative_path(name: str) -> PurePosixPath:
    """A file name from the browser or a ZIP entry as a relative path that stays inside the
    staging folder; UploadError for absolute names and ``..``."""
    text = name.replace("\\", "/")
    if "\0" in text:
        raise UploadError(f"{name!r}: file name contains a NUL character", "bad file name")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise UploadError(
            f"{name}: absolute path in the upload (refused: names must be relative)",
            "absolute path",
        )
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UploadError(
            f"{name}: path traversal ('..') in the upload (refused)", "path traversal"
        )
    if not parts:
        raise UploadError(f"{name!r}: empty file name", "bad file name")
    if any(len(p.encode("utf-8", "surrogateescape")) > 255 for p in parts):
        raise UploadError(f"{name[:80]}...: a file name is longer than 255 bytes", "bad file name")
    return PurePosixPath(*parts)


def is_archive_name(name: str) -> bool:
    lower = name.lower()
    if lower.endswith(".nii.gz"):
        return False
    return lower.endswith(_ARCHIVE_SUFFIXES)


def is_archive_bytes(head: bytes, name: str) -> bool:
    if name.lower().endswith(".nii.gz") and head.startswith(b"\x1f\x8b"):
        return False
    return head.startswith(_ARCHIVE_MAGIC) or head[257:262] == b"ustar"


# --- ZIP checks and extraction -------------------------------------------------------------


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def check_zip(zf: zipfile.ZipFile, limits: UploadLimits) -> list[zipfile.ZipInfo]:
    """The file entries of ``zf`` after every safety check; UploadError on the first problem.

    Checked from the central directory (cheap, before anything is written); the sizes are
    checked again while extracting because a crafted ZIP can understate them.
    """
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise UploadError(
            f"ZIP has {len(infos)} entries, more than the limit of "
            f"{limits.max_entries}: split it into smaller uploads",
            "too many files",
        )
    files: list[zipfile.ZipInfo] = []
    total = 0
    for info in infos:
        safe_relative_path(info.filename)
        if _is_symlink(info):
            raise UploadError(
                f"{info.filename}: symbolic link in the ZIP (refused)", "symbolic link"
            )
        if info.flag_bits & 0x1:
            raise UploadError(
                f"{info.filename}: encrypted ZIP entry (upload an unencrypted ZIP)",
                "encrypted entry",
            )
        if info.is_dir():
            continue
        if is_archive_name(info.filename):
            raise UploadError(
                f"{info.filename}: an archive inside the ZIP (nested archives are "
                f"refused: unpack it and upload its content)",
                "nested archive",
            )
        total += info.file_size
        if total > limits.max_bytes:
            raise UploadError(
                f"ZIP is larger than the limit of {_mb(limits.max_bytes)} when "
                f"unpacked: split it into smaller uploads",
                "too large",
            )
        files.append(info)
    return files


def extract_zip(zip_file: Path | IO[bytes], dest: Path, limits: UploadLimits) -> list[Path]:
    """Check and unpack a ZIP (a path, or a seekable file such as the upload's spooled
    stream) below ``dest``; returns the files written.

    UploadError for an unsafe or over-limit ZIP (whatever was written is left for the
    caller to remove with the staging folder).
    """
    try:
        zf = zipfile.ZipFile(zip_file)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UploadError("the uploaded file is not a readable ZIP archive", "not a ZIP") from None
    written: list[Path] = []
    budget = Budget(limits)
    with zf:
        for info in check_zip(zf, limits):
            budget.add_entry(info.filename)
            target = dest / safe_relative_path(info.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src:
                    copy_limited(src, target, budget, info.filename)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise UploadError(
                    f"{info.filename}: cannot unpack ({type(exc).__name__}: {exc})", "broken ZIP"
                ) from None
            written.append(target)
    return written


def copy_limited(src: IO[bytes], target: Path, budget: Budget, name: str) -> int:
    """Copy a stream to a new file, counting its bytes against ``budget``; refuses a second
    file of the same name and an archive (by its first bytes)."""
    size = 0
    first = True
    try:
        out = open(target, "xb")
    except FileExistsError:
        raise UploadError(
            f"{name}: the same file name appears twice in the upload", "duplicate name"
        ) from None
    with out:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            if first:
                first = False
                if is_archive_bytes(chunk[:512], name):
                    raise UploadError(
                        f"{name}: an archive inside the upload (nested archives are "
                        f"refused: unpack it and upload its content)",
                        "nested archive",
                    )
            budget.add_bytes(len(chunk), name)
            out.write(chunk)
            size += len(chunk)
    return size


def save_file(dest: Path, name: str, stream: IO[bytes], budget: Budget) -> Path:
    """Stage one file of a folder upload (its browser-relative name) below ``dest``."""
    rel = safe_relative_path(name)
    if is_archive_name(name):
        raise UploadError(
            f"{name}: an archive inside a folder upload (upload the ZIP on its own, or unpack it)",
            "nested archive",
        )
    budget.add_entry(name)
    target = dest / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    copy_limited(stream, target, budget, name)
    return target


# --- metadata ---------------------------------------------------------------------------------

FIELDS = ("study_description", "accession", "age", "sex")
# field -> (DICOM keyword, VR, longest value)
DICOM_FIELDS = {
    "study_description": ("StudyDescription", "LO", 64),
    "accession": ("AccessionNumber", "SH", 16),
    "age": ("PatientAge", "AS", 4),
    "sex": ("PatientSex", "CS", 16),
}
# sidecar keys (compared case-insensitively, without "_" and " ") for each field
SIDECAR_KEYS = {
    "study_description": ("studydescription", "studyname", "study"),
    "accession": ("accessionnumber", "accession"),
    "age": ("patientage", "age"),
    "sex": ("patientsex", "sex"),
}
LABELS = {
    "study_description": "Study name",
    "accession": "Accession number",
    "age": "Age",
    "sex": "Sex",
}
_AGE = re.compile(r"^\s*([0-9]{1,3})\s*([DWMY]|DAYS?|WEEKS?|MONTHS?|YEARS?)?\s*$", re.IGNORECASE)
_SEX = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F", "O": "O", "OTHER": "O"}


def normalize_age(value: object, where: str = "age") -> str:
    """A DICOM AS value (``045Y``); plain numbers are years; "90+" (Safe Harbor) is 090Y."""
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if text.endswith("+") and text[:-1].strip().isdigit() and int(text[:-1]) >= 90:
        return "090Y"
    m = _AGE.match(text)
    if not m:
        raise UploadError(
            f"{where}: {text!r} is not an age (give years, e.g. 45, or a DICOM age "
            f"such as 045Y, 006M, 010W, 003D)",
            "bad metadata",
        )
    unit = (m.group(2) or "Y")[0].upper()
    return f"{int(m.group(1)):03d}{unit}"


def normalize_sex(value: object, where: str = "sex") -> str:
    text = str(value).strip().upper()
    if text not in _SEX:
        raise UploadError(f"{where}: {str(value)!r} is not a sex (M, F or O)", "bad metadata")
    return _SEX[text]


def _normalize(name: str, value: object, where: str) -> str:
    if name == "age":
        return normalize_age(value, where)
    if name == "sex":
        return normalize_sex(value, where)
    text = " ".join(str(value).split())
    limit = DICOM_FIELDS[name][2]
    if len(text) > limit:
        raise UploadError(
            f"{where}: at most {limit} characters (DICOM {DICOM_FIELDS[name][0]}), got {len(text)}",
            "bad metadata",
        )
    if "\\" in text:
        raise UploadError(f"{where}: a backslash is not allowed", "bad metadata")
    return text


def form_metadata(form: dict[str, str]) -> dict[str, str]:
    """The metadata fields the form filled in, validated (UploadError names the field)."""
    out: dict[str, str] = {}
    for name in FIELDS:
        value = (form.get(name) or "").strip()
        if value:
            out[name] = _normalize(name, value, LABELS[name])
    return out


def sidecar_metadata(data: dict[str, Any], source: str) -> dict[str, str]:
    """The metadata fields a JSON sidecar gives (BIDS/dcm2niix keys or short names)."""
    keys = {k.lower().replace("_", "").replace(" ", ""): v for k, v in data.items()}
    out: dict[str, str] = {}
    for name, aliases in SIDECAR_KEYS.items():
        for alias in aliases:
            value = keys.get(alias)
            if value is not None and str(value).strip():
                out[name] = _normalize(name, value, f"{source}: {alias}")
                break
    return out


def merge_metadata(form: dict[str, str], sidecar: dict[str, str]) -> dict[str, str]:
    """Precedence form > sidecar; a field neither gives is absent (the header keeps its value)."""
    return {**sidecar, **form}


def read_sidecar(path: Path, source: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UploadError(f"{source}: not a readable JSON file ({exc})", "bad sidecar") from None
    if not isinstance(data, dict):
        raise UploadError(f"{source}: a JSON sidecar must be an object", "bad sidecar")
    return data


def apply_metadata(ds: pydicom.Dataset, meta: dict[str, str]) -> bool:
    """Set the header elements ``meta`` gives; True if anything changed."""
    changed = False
    for name, value in meta.items():
        keyword = DICOM_FIELDS[name][0]
        if str(ds.get(keyword, "")) != value:
            setattr(ds, keyword, value)
            changed = True
    return changed


# --- upload records -------------------------------------------------------------------------


@dataclass
class Skipped:
    name: str
    reason: str


@dataclass
class UploadRecord:
    upload_id: str
    kind: str  # "dicom" or "nifti"
    status: (
        str  # "stored" (DICOM in the pipeline / NIfTI kept), "partial" (stopped by a write error)
    )
    created: float
    user: str = ""
    project: str = ""
    source: str = ""  # "zip" or "folder"
    metadata: dict[str, str] = field(default_factory=dict)  # applied (form > sidecar)
    studies: list[str] = field(default_factory=list)  # StudyInstanceUIDs stored
    stored: int = 0  # DICOM files committed
    replaced: int = 0  # of which an earlier copy existed
    files: list[str] = field(default_factory=list)  # NIfTI set files kept
    volumes: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadRecord:
        names = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in names}
        values["skipped"] = [Skipped(**s) for s in values.get("skipped") or []]
        return cls(**values)


def uploads_dir(cfg: SiteConfig) -> Path:
    return cfg.paths.uploads


def new_upload_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(4)}"


def staging_dir(cfg: SiteConfig, upload_id: str) -> Path:
    """Where a request's files wait (same filesystem as the archive, so commits are renames)."""
    if not _ID.match(upload_id):
        raise ValueError(f"not an upload id: {upload_id!r}")
    return cfg.paths.upload_staging / upload_id


def remove_staging(cfg: SiteConfig, upload_id: str) -> None:
    shutil.rmtree(staging_dir(cfg, upload_id), ignore_errors=True)


def remove_stale(cfg: SiteConfig, max_age_s: float = 86400.0) -> None:
    """Staging folders and header-rewrite temp files an interrupted upload left behind."""
    limit = time.time() - max_age_s
    for parent, prefix in ((cfg.paths.upload_staging, ""), (cfg.paths.temp, ".upload-")):
        try:
            entries = list(os.scandir(parent))
        except FileNotFoundError:
            continue
        for e in entries:
            try:
                if not e.name.startswith(prefix) or e.stat(follow_symlinks=False).st_mtime >= limit:
                    continue
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path)
                else:
                    os.unlink(e.path)
            except OSError:
                pass


def record_path(cfg: SiteConfig, upload_id: str) -> Path:
    if not _ID.match(upload_id):
        raise ValueError(f"not an upload id: {upload_id!r}")
    return cfg.paths.upload_record(upload_id)


def save_record(cfg: SiteConfig, record: UploadRecord) -> None:
    path = record_path(cfg, record.upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record.to_json(), durable=True, mode=0o640)


def load_record(cfg: SiteConfig, upload_id: str) -> UploadRecord | None:
    try:
        data = json.loads(record_path(cfg, upload_id).read_text(encoding="utf-8"))
        return UploadRecord.from_json(data)
    except (OSError, ValueError, TypeError):
        return None


def list_uploads(cfg: SiteConfig, limit: int = 100) -> list[UploadRecord]:
    """The newest uploads first (ids start with their time)."""
    try:
        names = sorted(
            (e.name for e in os.scandir(uploads_dir(cfg)) if _ID.match(e.name)), reverse=True
        )
    except FileNotFoundError:
        return []
    records = []
    for name in names[:limit]:
        record = load_record(cfg, name)
        if record is not None:
            records.append(record)
    return records


def upload_projects(cfg: SiteConfig, since: float) -> dict[str, str]:
    """StudyInstanceUID -> project for DICOM uploads made for a project since ``since``."""
    found: dict[str, str] = {}
    cutoff = time.strftime("%Y%m%dT%H%M%S", time.localtime(since))
    try:
        names = sorted(
            e.name for e in os.scandir(uploads_dir(cfg)) if _ID.match(e.name) and e.name >= cutoff
        )
    except FileNotFoundError:
        return found
    for name in names:
        record = load_record(cfg, name)
        if record is not None and record.kind == "dicom" and record.project:
            for uid in record.studies:
                found[uid] = record.project
    return found


# --- sorting the staged files -----------------------------------------------------------------


@dataclass
class NiftiSet:
    base: str  # relative path without the extension
    image: Path
    bvec: Path | None = None
    bval: Path | None = None
    sidecar: Path | None = None


@dataclass
class Sorted:
    dicom: list[tuple[str, Path, str]] = field(default_factory=list)  # (relative name, path, kind)
    sidecars: list[tuple[str, Path]] = field(default_factory=list)
    nifti: dict[str, NiftiSet] = field(default_factory=dict)
    nifti_parts: list[tuple[str, Path]] = field(
        default_factory=list
    )  # .bvec/.bval waiting for a set
    skipped: list[Skipped] = field(default_factory=list)


def _nifti_base(name: str) -> tuple[str, str] | None:
    lower = name.lower()
    for ext in (".nii.gz", ".nii", ".bvec", ".bval", ".json"):
        if lower.endswith(ext):
            return name[: -len(ext)], ext
    return None


def dicom_kind(path: Path) -> str:
    """ "part10" (preamble + DICM), "dataset" (a bare DICOM data set), "dicomdir" or ""."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return ""
    if len(head) == 132 and head[128:132] == b"DICM":
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        except (
            Exception
        ):  # a broken header is still DICOM to the archive; processSingleFile decides
            return "part10"
        if str(ds.file_meta.get("MediaStorageSOPClassUID", "")) == _MEDIA_DIRECTORY:
            return "dicomdir"
        return "part10"
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception:
        return ""
    uids = [str(ds.get(k, "")) for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")]
    return "dataset" if all(_UID.match(u) for u in uids) else ""


def sort_files(root: Path) -> Sorted:
    """Classify every staged file below ``root``."""
    result = Sorted()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        name = path.relative_to(root).as_posix()
        parts = name.split("/")
        if parts[0] == "__MACOSX" or parts[-1] in (".DS_Store", "Thumbs.db", "desktop.ini"):
            result.skipped.append(Skipped(name, "operating-system metadata, not data"))
            continue
        nifti = _nifti_base(name)
        if nifti and nifti[1] in (".nii", ".nii.gz"):
            result.nifti.setdefault(nifti[0], NiftiSet(nifti[0], path)).image = path
            continue
        if nifti and nifti[1] == ".json":
            result.sidecars.append((name, path))
            continue
        if nifti and nifti[1] in (".bvec", ".bval"):
            result.nifti_parts.append((name, path))
            continue
        kind = dicom_kind(path)
        if kind in ("part10", "dataset"):
            result.dicom.append((name, path, kind))
        elif kind == "dicomdir":
            result.skipped.append(Skipped(name, "DICOMDIR (an index of the media, not an image)"))
        else:
            result.skipped.append(Skipped(name, "not a DICOM file"))
    return result


# --- NIfTI ----------------------------------------------------------------------------------


def nifti_volumes(path: Path) -> int:
    """Volumes (dim[4]) of a NIfTI-1/-2 image, from its header; UploadError if unreadable."""
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(544)
    except (OSError, EOFError) as exc:
        raise UploadError(
            f"{path.name}: cannot read the NIfTI header ({exc})", "bad NIfTI set"
        ) from None
    for endian in ("<", ">"):
        if len(head) >= 348 and struct.unpack_from(endian + "i", head, 0)[0] == 348:
            if head[344:348] not in (b"n+1\0", b"ni1\0"):
                break
            dims = struct.unpack_from(endian + "8h", head, 40)
            return max(1, dims[4]) if dims[0] >= 4 else 1
        if len(head) >= 540 and struct.unpack_from(endian + "i", head, 0)[0] == 540:
            if head[4:8] not in (b"n+2\0", b"ni2\0"):
                break
            dims = struct.unpack_from(endian + "8q", head, 16)
            return max(1, dims[4]) if dims[0] >= 4 else 1
    raise UploadError(f"{path.name}: not a NIfTI-1 or NIfTI-2 image (bad header)", "bad NIfTI set")


def _numbers(path: Path, name: str) -> list[list[float]]:
    try:
        rows = [
            line.split() for line in path.read_text(encoding="ascii").splitlines() if line.strip()
        ]
        return [[float(v) for v in row] for row in rows]
    except (OSError, UnicodeDecodeError, ValueError):
        raise UploadError(
            f"{name}: expected rows of numbers separated by spaces", "bad NIfTI set"
        ) from None


def validate_nifti_set(s: NiftiSet, root: Path) -> int:
    """Check a set (all four files, consistent counts); returns the number of volumes."""
    name = s.image.relative_to(root).as_posix()
    missing = [
        ext for ext, p in ((".bvec", s.bvec), (".bval", s.bval), (".json", s.sidecar)) if p is None
    ]
    if missing:
        raise UploadError(
            f"{name}: the NIfTI set is incomplete: missing {', '.join(s.base + m for m in missing)} "
            f"(a set is .nii/.nii.gz + .bvec + .bval + .json with one base name)",
            "bad NIfTI set",
        )
    assert s.bvec is not None and s.bval is not None and s.sidecar is not None
    volumes = nifti_volumes(s.image)
    bvals = _numbers(s.bval, s.bval.name)
    if len(bvals) != 1:
        raise UploadError(
            f"{s.bval.name}: expected one row of b-values, got {len(bvals)} rows", "bad NIfTI set"
        )
    bvecs = _numbers(s.bvec, s.bvec.name)
    if len(bvecs) != 3 or len({len(r) for r in bvecs}) != 1:
        raise UploadError(
            f"{s.bvec.name}: expected 3 rows of equal length (x, y, z of each volume)",
            "bad NIfTI set",
        )
    if not len(bvals[0]) == len(bvecs[0]) == volumes:
        raise UploadError(
            f"{name}: {volumes} volumes, but {len(bvals[0])} b-values and "
            f"{len(bvecs[0])} b-vectors: they must be equal",
            "bad NIfTI set",
        )
    read_sidecar(s.sidecar, s.sidecar.name)
    return volumes


def _attach_nifti_parts(found: Sorted) -> None:
    """Give each NIfTI set its .bvec, .bval and .json; leftovers are reported."""
    sidecars = []
    for name, path in found.sidecars:
        base = name[: -len(".json")]
        if base in found.nifti:
            found.nifti[base].sidecar = path
        else:
            sidecars.append((name, path))
    found.sidecars = sidecars
    for name, path in found.nifti_parts:
        base, ext = _nifti_base(name) or ("", "")
        if base in found.nifti:
            setattr(found.nifti[base], ext[1:], path)
        else:
            found.skipped.append(Skipped(name, f"{ext} file without a matching .nii/.nii.gz"))
    found.nifti_parts = []


# --- ingest ---------------------------------------------------------------------------------


def _staged_dicom_with_metadata(
    cfg: SiteConfig, path: Path, meta: dict[str, str], kind: str
) -> Path:
    """``path`` itself, or a new temp file with ``meta`` applied / file meta added."""
    if not meta and kind == "part10":
        return path
    ds = pydicom.dcmread(path, force=True)
    changed = apply_metadata(ds, meta)
    if kind == "part10" and not changed:
        return path
    if kind == "dataset" or "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        implicit, little = ds.original_encoding
        meta_ds = FileMetaDataset()
        meta_ds.TransferSyntaxUID = (
            pydicom.uid.ImplicitVRLittleEndian
            if implicit
            else pydicom.uid.ExplicitVRLittleEndian
            if little
            else pydicom.uid.ExplicitVRBigEndian
        )
        meta_ds.MediaStorageSOPClassUID = ds.SOPClassUID
        meta_ds.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta = meta_ds
    cfg.paths.temp.mkdir(parents=True, exist_ok=True)
    tmp = cfg.paths.temp / f".upload-{os.getpid()}-{secrets.token_hex(6)}.dcm"
    try:
        ds.save_as(tmp, enforce_file_format=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _store_dicom(
    cfg: SiteConfig, files: list[tuple[str, Path, str]], meta: dict[str, str], record: UploadRecord
) -> None:
    notifier = Notifier(cfg.paths)
    notifier.start()
    studies: dict[str, None] = {}
    try:
        for name, path, kind in files:
            tmp: Path | None = None
            try:
                tmp = _staged_dicom_with_metadata(cfg, path, meta, kind)
                ids = store.read_identifiers(tmp)
                stored = store.store_received(
                    cfg.paths, tmp, ids.sop_class_uid, ids.sop_instance_uid
                )
            except store.StoreError as exc:
                if exc.status == store.OUT_OF_RESOURCES:
                    raise UploadError(
                        f"{name}: cannot store: {exc.reason} (the files before it are "
                        f"stored; upload again when there is room)",
                        "store failed",
                    ) from None
                record.skipped.append(Skipped(name, f"not stored: {exc.reason}"))
                continue
            except OSError as exc:
                raise UploadError(
                    f"{name}: cannot store: {exc.strerror or exc} (the files before "
                    f"it are stored; upload again when this is fixed)",
                    "store failed",
                ) from None
            except Exception as exc:  # any parser failure: bad input, reported per file
                record.skipped.append(
                    Skipped(name, f"not stored: unreadable DICOM ({type(exc).__name__})")
                )
                continue
            finally:
                if tmp is not None and tmp != path:
                    tmp.unlink(missing_ok=True)
            record.stored += 1
            record.replaced += int(stored.replaced)
            studies[ids.study_uid] = None
            notifier.arrived(
                CALLING_AE, cfg.aetitle, UPLOAD_IP, stored.study_uid, stored.study_dir, stored.name
            )
    finally:
        notifier.close()
        record.studies = list(studies)


def _sidecar_for_dicom(sidecars: list[tuple[str, Path]]) -> tuple[dict[str, str], list[str]]:
    """Merge the metadata of every JSON file in a DICOM upload; conflicting values refuse."""
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    used = []
    for name, path in sidecars:
        values = sidecar_metadata(read_sidecar(path, name), name)
        for key, value in values.items():
            if key in merged and merged[key] != value:
                raise UploadError(
                    f"{name}: {LABELS[key]} {value!r} differs from {merged[key]!r} "
                    f"in {origin[key]} (give the value in the form instead)",
                    "conflicting sidecars",
                )
            merged[key], origin[key] = value, name
        if values:
            used.append(name)
    return merged, used


def ingest(
    cfg: SiteConfig,
    upload_id: str,
    root: Path,
    form: dict[str, str],
    *,
    user: str = "",
    project: str = "",
    source: str = "",
) -> UploadRecord:
    """File the staged upload below ``root`` (see the module docstring) and record it.

    UploadError when nothing can be taken (bad metadata, an incomplete NIfTI set, DICOM mixed
    with NIfTI, no usable file); files that are not data are listed in ``skipped``.
    """
    form_meta = form_metadata(form)
    found = sort_files(root)
    _attach_nifti_parts(found)
    record = UploadRecord(
        upload_id,
        "dicom",
        "stored",
        time.time(),
        user=user,
        project=project,
        source=source,
        skipped=list(found.skipped),
    )
    if found.nifti and found.dicom:
        raise UploadError(
            "the upload mixes DICOM files and NIfTI images: upload them separately",
            "DICOM mixed with NIfTI",
        )
    if found.nifti:
        _ingest_nifti(cfg, record, found, form_meta, root)
    elif found.dicom:
        sidecar, used = _sidecar_for_dicom(found.sidecars)
        record.metadata = merge_metadata(form_meta, sidecar)
        unused = [n for n, _ in found.sidecars if n not in used]
        record.skipped += [Skipped(n, "JSON file without study metadata") for n in unused]
        try:
            _store_dicom(cfg, found.dicom, record.metadata, record)
        except UploadError as exc:
            if record.stored:  # what is in the archive goes on through the pipeline: say so
                record.status, record.note = "partial", str(exc)
                save_record(cfg, record)
            raise
        if not record.stored:
            raise UploadError(
                "no DICOM file could be stored: "
                + "; ".join(f"{s.name}: {s.reason}" for s in record.skipped[:5]),
                "nothing stored",
            )
    else:
        shown = (
            "; ".join(f"{s.name}: {s.reason}" for s in record.skipped[:5]) or "the upload is empty"
        )
        raise UploadError(f"no DICOM files and no NIfTI set found ({shown})", "nothing usable")
    save_record(cfg, record)
    log.info(
        "upload stored",
        extra={
            "upload_id": upload_id,
            "kind": record.kind,
            "user": user,
            "project": project,
            "files": record.stored or len(record.files),
            "studies": record.studies,
            "skipped": len(record.skipped),
        },
    )
    return record


def _ingest_nifti(
    cfg: SiteConfig, record: UploadRecord, found: Sorted, form_meta: dict[str, str], root: Path
) -> None:
    record.kind = "nifti"
    record.note = "NIfTI kept as uploaded; conversion to DICOM is not available yet"
    for s in found.nifti.values():
        record.volumes += validate_nifti_set(s, root)
    sidecar: dict[str, str] = {}
    for s in found.nifti.values():
        assert s.sidecar is not None
        name = s.sidecar.relative_to(root).as_posix()
        for key, value in sidecar_metadata(read_sidecar(s.sidecar, name), name).items():
            sidecar.setdefault(key, value)
    record.metadata = merge_metadata(form_meta, sidecar)
    record.skipped += [
        Skipped(n, "JSON file without a matching .nii/.nii.gz") for n, _ in found.sidecars
    ]
    target = cfg.paths.upload_files(record.upload_id)
    for s in found.nifti.values():
        for path in (s.image, s.bvec, s.bval, s.sidecar):
            assert path is not None
            rel = path.relative_to(root)
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, dest)
            _fsync_file(dest)
            record.files.append(rel.as_posix())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def skipped_text(skipped: Iterable[Skipped], limit: int = 20) -> list[str]:
    """Lines for the page: every left-out file with its reason (the first ``limit``)."""
    items = list(skipped)
    lines = [f"{s.name}: {s.reason}" for s in items[:limit]]
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit} more")
    return lines
