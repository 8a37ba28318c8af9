"""Files from the browser land safely in the staging folder: names stay inside it, archives are
not unpacked twice, and every byte counts against the upload's budget.

ZIP safety (:func:`check_zip`): absolute names, ``..``, symlink entries, encrypted entries,
nested archives, more than ``max_entries`` entries or more than ``max_bytes`` decompressed
are refused with one clear line; sizes are enforced while extracting, whatever the central
directory claims.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from .errors import UploadError
from .limits import Budget, UploadLimits, format_mb

CHUNK = 1 << 20
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
                f"ZIP is larger than the limit of {format_mb(limits.max_bytes)} when "
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
