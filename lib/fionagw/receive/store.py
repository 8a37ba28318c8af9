"""Durable archive writes for received objects.

A received object lands in ``site/archive/scp_<StudyInstanceUID>/<MOD>.<SOPInstanceUID>``,
the bytes exactly as the sender encoded them (file meta + dataset in the negotiated
transfer syntax). The SCP puts each dataset into a temp file under ``site/temp``
(``.scp-`` names, :data:`TEMP_PREFIX`); the receiver seals and flushes it once and its group
commit moves it (:mod:`fionagw.receive.durable`), or :func:`commit` fsyncs it, renames it into
the study folder (replacing an earlier copy of the same instance atomically) and fsyncs the
folder: either way Success is only ever answered for bytes that survive a crash. Nothing
is ever half-written under a final name.

Names come from data the sender controls. The SOP Instance, Series and Study Instance UIDs
must be conformant (PS3.5 9.1: at most 64 characters, digits and dots, no empty component) or
the object is refused with 0xA900: a valid UID is its own file name, so two different
instances can never share one (FIONA mapped other characters to ``_`` and cut at 128, so five
different instances were answered Success and left two files). :func:`fionagw.paths.safe_uid`
still makes the path component, as it does everywhere else.

Before the commit the whole data set is walked (:mod:`fionagw.receive.structure`): an object
that is structurally broken anywhere, not only before its Series Instance UID, is refused
with 0xC210, so the sender learns it at once and can send it again.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydicom.filereader import read_partial
from pydicom.tag import BaseTag

from fionagw.dicom.errors import CodecError
from fionagw.dicom.walk import elements, part10
from fionagw.ops.perms import FILE_MODE
from fionagw.paths import SitePaths, safe_uid
from fionagw.receive import flushes, structure
from fionagw.receive.modality import modality_prefix

# C-STORE response statuses (PS3.4 Annex B.2.3; 0xC000-0xCFFF "cannot understand").
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # disk full, quota, I/O error: the sender should retry later
DATASET_MISMATCH = 0xA900  # SOP Instance/Class UID missing or different from the request
CANNOT_DECODE = 0xC210  # the dataset cannot be parsed (same meaning as pynetdicom's code)
NO_STUDY_UID = 0xC220  # no Study Instance UID: the object has no place in the archive
WRITE_FAILED = 0xC230  # any other local write error (permissions, not a directory, ...)

# errno values that mean "no room / the device failed": worth a retry by the sender.
RESOURCE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOSPC",
        "EDQUOT",
        "EIO",
        "ENOMEM",
        "EMFILE",
        "ENFILE",
        "EFBIG",
        "EROFS",
        "ENOBUFS",
    )
    if hasattr(errno, name)
)

_TAG_SOP_CLASS = 0x00080016
_TAG_SOP_INSTANCE = 0x00080018
_TAG_STUDY = 0x0020000D
_TAG_SERIES = 0x0020000E


class StoreError(Exception):
    """A store that must be answered with a failure ``status``; str() is loggable (no PHI)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Identifiers:
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str


@dataclass(frozen=True)
class Stored:
    path: Path
    study_dir: Path
    name: str
    study_uid: str  # as used in the path (sanitized)
    replaced: bool  # an earlier copy of this instance was overwritten
    size: int


def status_for_oserror(exc: OSError) -> int:
    return OUT_OF_RESOURCES if exc.errno in RESOURCE_ERRNOS else WRITE_FAILED


def _stop_after_study(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag > _TAG_SERIES


def read_identifiers(path: Path | str, head: bytes | None = None) -> Identifiers:
    """SOP Class/Instance, Study and Series UIDs of a received file (header start only).

    ``head`` is the start of the file when the caller still has it in memory (the SCP
    does). The codec's element walker does the common case (~20x faster than pydicom, which
    took ~0.8 ms per image); anything it does not read goes to pydicom.
    """
    if head is not None:
        ids = _scan_identifiers(head)
        if ids is not None:
            return ids
    with open(path, "rb") as f:  # OSError propagates: a local problem, not bad data
        if head is None:
            ids = _scan_identifiers(f.read(_HEAD_BYTES))
            if ids is not None:
                return ids
            f.seek(0)
        return _pydicom_identifiers(f)


def _pydicom_identifiers(f: BinaryIO) -> Identifiers:
    try:
        ds = read_partial(f, stop_when=_stop_after_study)
        values = []
        for tag in (_TAG_SOP_CLASS, _TAG_SOP_INSTANCE, _TAG_STUDY, _TAG_SERIES):
            elem = ds.get(tag)
            value = elem.value if elem is not None else None
            values.append(str(value).strip("\0 ") if isinstance(value, str) else "")
    except Exception as exc:  # any parser failure means undecodable data
        raise StoreError(CANNOT_DECODE, f"dataset cannot be parsed: {type(exc).__name__}") from None
    return Identifiers(*values)


# --- the fast path: the first elements, by the codec's walker ---------------------------------

HEAD_BYTES = _HEAD_BYTES = 256 * 1024  # what the walker looks at
_WANTED = (_TAG_SOP_CLASS, _TAG_SOP_INSTANCE, _TAG_STUDY, _TAG_SERIES)  # in Identifiers order
_WANTED_SET = frozenset(_WANTED)
_AFTER_SERIES = range(_TAG_SERIES + 1, 1 << 32)  # the walk stops at the first of these tags


def _scan_identifiers(buf: bytes) -> Identifiers | None:
    """The identifiers from the top-level elements; None when pydicom must decide (the bytes
    are unusual, or ``buf``, the start of a longer file, ends before all were found)."""
    values: dict[int, bytes] = {}
    try:
        p = part10(buf, inflate_limit=_HEAD_BYTES)
        body = p.body
        implicit, little = p.syntax.implicit, p.syntax.little
        for tag, _vr, _length, start, end in elements(
            body, p.start, len(body), implicit, little, stop=_AFTER_SERIES
        ):
            if tag in _WANTED:
                values[tag] = body[start:end]
        if len(values) < len(_WANTED) and max(len(buf), len(body)) >= _HEAD_BYTES:
            return None  # perhaps only because the walk met the end of ``buf``
        return Identifiers(*(_uid_text(values.get(tag, b"")) for tag in _WANTED))
    except (CodecError, UnicodeDecodeError):
        return None


def _uid_text(value: bytes) -> str:
    return value.decode("ascii").strip("\0 ")


def _uid_field(value: bytes) -> str:
    """A UID value as text; a non-ASCII byte stays visible to :func:`uid_problem`."""
    return value.decode("ascii", "replace").strip("\0 ")


MAX_UID_LENGTH = 64
_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")  # leading zeros are tolerated: still injective


def uid_problem(value: str) -> str | None:
    """Why ``value`` is not a conformant UID (a text without the value), or None."""
    if len(value) > MAX_UID_LENGTH:
        return f"longer than {MAX_UID_LENGTH} characters"
    if not _UID.fullmatch(value):
        return "not digits and dots, or an empty component"
    return None


def check_identifiers(ids: Identifiers, sop_class_uid: str, sop_instance_uid: str) -> None:
    """The checks stock storescp makes before it keeps an object, and conformant UIDs."""
    if not ids.sop_instance_uid:
        raise StoreError(DATASET_MISMATCH, "dataset has no SOP Instance UID")
    if ids.sop_instance_uid != sop_instance_uid:
        raise StoreError(DATASET_MISMATCH, "SOP Instance UID of dataset and request differ")
    if ids.sop_class_uid and ids.sop_class_uid != sop_class_uid:
        raise StoreError(DATASET_MISMATCH, "SOP Class UID of dataset and request differ")
    if not ids.study_uid:
        raise StoreError(NO_STUDY_UID, "dataset has no Study Instance UID")
    for name, value in (
        ("SOP Instance UID", ids.sop_instance_uid),
        ("Study Instance UID", ids.study_uid),
        ("Series Instance UID", ids.series_uid),
    ):
        if value and (problem := uid_problem(value)):
            raise StoreError(DATASET_MISMATCH, f"{name} {problem}")


def archive_target(
    paths: SitePaths, sop_class_uid: str, sop_instance_uid: str, study_uid: str
) -> tuple[Path, str, str]:
    """(study folder, file name, sanitized study UID) for an object, storescp style."""
    try:
        study = safe_uid(study_uid)
        sop = safe_uid(sop_instance_uid)
    except ValueError as exc:
        raise StoreError(DATASET_MISMATCH, str(exc)) from None
    return paths.archive_study_dir(study), f"{modality_prefix(sop_class_uid)}.{sop}", study


# --- temp files ----------------------------------------------------------------------------

TEMP_PREFIX = ".scp-"
TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_names = itertools.count()


def temp_name() -> str:
    """A new temp file name, unique within the process (the pid keeps processes apart)."""
    return f"{TEMP_PREFIX}{os.getpid()}-{next(_names)}.dcm"


def temp_path(tempdir: str) -> str:
    return os.path.join(tempdir, temp_name())


def open_temp(tempdir: str) -> tuple[str, int] | None:
    """A new temp file, created ahead of its data set (creating a file is not free on a busy
    filesystem); None when that fails, to be tried again at the first write and answered."""
    path = temp_path(tempdir)
    try:
        return path, os.open(path, TEMP_FLAGS, 0o600)
    except OSError:
        return None


# --- durable commit ------------------------------------------------------------------------


def ensure_dir(directory: Path, durable: bool) -> bool:
    """Make the study folder ``directory`` if missing (its parent fsynced when ``durable``);
    True when it was made here."""
    if directory.is_dir():
        return False
    try:
        directory.mkdir()
    except FileExistsError:
        if not directory.is_dir():
            raise
        return False
    if durable:
        flushes.fsync_folder(directory.parent)
    return True


def commit(
    tmp: Path | str,
    study_dir: Path,
    name: str,
    *,
    durable: bool = True,
    mode: int = FILE_MODE,
    fd: int | None = None,
    size: int | None = None,
    check_replaced: bool = True,
) -> tuple[Path, bool, int]:
    """Move the complete temp file ``tmp`` to ``study_dir/name`` atomically and durably.

    ``fd`` is an open descriptor of ``tmp`` (left open) when the caller has one, ``size``
    its length when known. Without ``check_replaced`` the returned "replaced" is always
    False (one stat less). Returns (final path, whether an older copy was replaced, size).
    On error the final name is untouched (the caller removes ``tmp``).
    """
    own = fd is None
    if own:
        fd = os.open(tmp, os.O_RDWR | os.O_CLOEXEC)
    try:
        if size is None:
            size = os.fstat(fd).st_size
        os.fchmod(fd, mode)
        if durable:
            flushes.fsync_file(fd)  # fdatasync measured no faster, and leaves the mode unsynced
    finally:
        if own:
            os.close(fd)
    ensure_dir(study_dir, durable)
    final = study_dir / name
    replaced = check_replaced and os.path.lexists(final)
    try:
        os.rename(tmp, final)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_into(Path(tmp), study_dir, final, durable, mode)  # archive on another filesystem
    if durable:
        flushes.fsync_folder(study_dir)
    return final, replaced, size


def _copy_into(src: Path, directory: Path, final: Path, durable: bool, mode: int) -> None:
    tmp = directory / temp_name()
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fchmod(fout.fileno(), mode)
            if durable:
                flushes.fsync_file(fout.fileno())
        os.rename(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        os.unlink(src)
    except OSError:
        pass


def check_received(
    paths: SitePaths, tmp: Path | str, sop_class_uid: str, sop_instance_uid: str
) -> tuple[Path, str, str]:
    """Walk a received temp file whole and check its identifiers; (study folder, file name,
    sanitized study UID) of its place in the archive, or StoreError.

    The walk (:func:`fionagw.receive.structure.check_file`) also yields the identifiers.
    """
    try:
        values = structure.check_file(tmp, _WANTED_SET)
        if values is None:  # a deflated data set too large to walk: pydicom reads its head
            ids = read_identifiers(tmp)
        else:
            ids = Identifiers(*(_uid_field(values.get(tag, b"")) for tag in _WANTED))
    except structure.BrokenStructure as exc:
        raise StoreError(CANNOT_DECODE, f"broken dataset: {exc}") from None
    except OSError as exc:
        raise StoreError(
            status_for_oserror(exc), f"cannot read received data: {exc.strerror}"
        ) from None
    check_identifiers(ids, sop_class_uid, sop_instance_uid)
    return archive_target(paths, sop_class_uid, sop_instance_uid, ids.study_uid)


def store_received(
    paths: SitePaths,
    tmp: Path | str,
    sop_class_uid: str,
    sop_instance_uid: str,
    *,
    durable: bool = True,
    fd: int | None = None,
    size: int | None = None,
    check_replaced: bool = True,
) -> Stored:
    """Check a received temp file (:func:`check_received`) and commit it to the archive
    synchronously; StoreError on failure.

    ``fd`` (an open descriptor of it) and ``size`` save re-opening and a stat when the
    caller has them; ``check_replaced`` is passed to :func:`commit`.
    """
    study_dir, name, study = check_received(paths, tmp, sop_class_uid, sop_instance_uid)
    try:
        final, replaced, size = commit(
            tmp, study_dir, name, durable=durable, fd=fd, size=size, check_replaced=check_replaced
        )
    except OSError as exc:
        where = exc.filename or study_dir
        raise StoreError(status_for_oserror(exc), f"cannot write {where}: {exc.strerror}") from None
    return Stored(final, study_dir, name, study, replaced, size)
