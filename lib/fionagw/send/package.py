"""Packages: how a study leaves for a remote site (destination types ``sftp`` and ``https``).

For these types anonymizeAndSend does not talk to the remote site itself: it writes the
de-identified study into the destination's outbox (``DATADIR/packages/<destination>/outbox``)
as one package, and ``sendFiles`` delivers it later (deliver.py). A package is four files::

    <stem>.tgz      the DICOM files under <stem>/<series>/..., and manifest.json first
    <stem>.json     the manifest: file count, SOP Instance UIDs, each file's size and SHA-256,
                    the archive's size, MD5 and SHA-256
    <stem>.md5sum   the archive's MD5 as ``md5sum -b`` writes it: "<hex> *<stem>.tgz"
    <stem>.state    local only, never sent: the transfer request (to update the tracker) and
                    sendFiles' retry state

The manifest is written last (after the archive and .md5sum are fsynced), so a package is
complete exactly when its manifest exists: a crash while packaging leaves no manifest, and
the next anonymizeAndSend run writes the package again (same name, same content).
``<stem>`` is ``<project>_<participant>[_<event>]_<de-identified StudyUID>``: no original value.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from fionagw.ops import perms
from fionagw.ops.atomic import fsync_dir, write_bytes_atomic, write_json_atomic
from fionagw.paths import safe_component
from fionagw.send.base import Destination, SendContext, SendError, SendResult

log = logging.getLogger("fionagw.send.package")

MANIFEST_FORMAT = 1
CHUNK = 1 << 20
ARCHIVE, MANIFEST, MD5SUM, STATE = ".tgz", ".json", ".md5sum", ".state"


@dataclass(frozen=True)
class Package:
    folder: Path
    stem: str

    @property
    def archive(self) -> Path:
        return self.folder / f"{self.stem}{ARCHIVE}"

    @property
    def manifest(self) -> Path:
        return self.folder / f"{self.stem}{MANIFEST}"

    @property
    def md5sum(self) -> Path:
        return self.folder / f"{self.stem}{MD5SUM}"

    @property
    def state(self) -> Path:
        return self.folder / f"{self.stem}{STATE}"

    def upload_files(self) -> list[Path]:
        """What goes to the remote site, in order: the .md5sum last (its arrival tells the
        site's checks that the archive beside it is whole, as FIONA's DAIC uploads did)."""
        return [self.archive, self.manifest, self.md5sum]

    def move_to(self, folder: Path) -> Package:
        """Move the package's files into ``folder`` (the manifest first: whoever lists the
        old folder no longer sees a complete package); returns the moved package."""
        perms.make_dirs(folder)
        moved = Package(folder, self.stem)
        for src, dst in zip(
            [self.manifest, self.archive, self.md5sum, self.state],
            [moved.manifest, moved.archive, moved.md5sum, moved.state],
            strict=True,
        ):
            if src.exists():
                os.replace(src, dst)
        fsync_dir(folder)
        fsync_dir(self.folder)
        return moved

    def read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_state(self, state: dict[str, Any]) -> None:
        write_json_atomic(self.state, state, durable=True)

    def age_s(self, now: float | None = None) -> float:
        return (now if now is not None else time.time()) - self.manifest.stat().st_mtime


def package_stem(context: SendContext) -> str:
    parts = [context.project, context.participant, context.event, context.study_uid]
    return "_".join(safe_component(p) for p in parts if p)


def packages(folder: Path) -> list[Package]:
    """The complete packages in ``folder`` (those with a manifest), oldest first."""
    try:
        names = [n for n in os.listdir(folder) if n.endswith(MANIFEST) and not n.startswith(".")]
    except FileNotFoundError:
        return []
    found = [Package(folder, n[: -len(MANIFEST)]) for n in names]
    found = [p for p in found if p.archive.exists()]
    return sorted(found, key=lambda p: (p.manifest.stat().st_mtime, p.stem))


def file_digests(path: Path, *names: str) -> dict[str, str]:
    """Hex digests (``md5``, ``sha256``) of a file, read once."""
    hashes = {n: hashlib.new(n) for n in names}
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashes.values():
                h.update(chunk)
    return {n: h.hexdigest() for n, h in hashes.items()}


def md5sum_line(md5: str, name: str) -> str:
    """One line of ``md5sum -b`` output (the binary-mode ``*`` before the name)."""
    return f"{md5} *{name}\n"


def repair_md5sum(package: Package) -> tuple[str, bool]:
    """The archive's MD5, and whether the .md5sum had to be written anew (missing, unreadable
    or wrong: FIONA's repair, done before every upload rather than after 5 days)."""
    md5 = file_digests(package.archive, "md5")["md5"]
    try:
        fields = package.md5sum.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        fields = []
    if fields[:1] == [md5] and fields[1:2] == [f"*{package.archive.name}"]:
        return md5, False
    write_bytes_atomic(package.md5sum, md5sum_line(md5, package.archive.name).encode("ascii"))
    return md5, True


class _Hashing(io.RawIOBase):
    """A write-only file that hashes what passes through it to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.md5, self.sha256 = hashlib.md5(), hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:  # type: ignore[override]
        data = bytes(b)
        self.md5.update(data)
        self.sha256.update(data)
        self.out.write(data)
        self.size += len(data)
        return len(data)


def _entries(files: Sequence[Path], base: Path) -> list[dict[str, Any]]:
    from pydicom import dcmread  # only when packaging: sendFiles starts without it

    entries = []
    for f in files:
        ds = dcmread(f, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        digest = file_digests(f, "sha256")["sha256"]
        entries.append(
            {
                "path": str(f.relative_to(base)),
                "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
                "size": f.stat().st_size,
                "sha256": digest,
            }
        )
    return entries


def write_package(
    outbox: Path, files: Sequence[Path], context: SendContext, request: dict[str, Any] | None
) -> Package:
    """Write one study as a package into ``outbox`` (see the module's text); an existing
    package of the same study is replaced whole."""
    if not files:
        raise SendError("nothing to package")
    base = Path(os.path.commonpath([str(f.parent) for f in files]))
    package = Package(outbox, package_stem(context))
    perms.make_dirs(outbox)
    try:  # a package being replaced is incomplete until its new manifest is written
        package.manifest.unlink()
    except FileNotFoundError:
        pass
    entries = _entries(files, base)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "project": context.project,
        "participant": context.participant,
        "event": context.event,
        "study_instance_uid": context.study_uid,
        "file_count": len(entries),
        "sop_instance_uids": sorted({e["sop_instance_uid"] for e in entries}),
        "files": entries,
    }
    inner = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    tmp = outbox / f".tmp-{package.archive.name}"
    with tmp.open("wb") as raw:
        hashing = _Hashing(raw)
        # gzip level 1: DICOM pixels barely compress, and the time is the gateway's
        with tarfile.open(fileobj=hashing, mode="w:gz", compresslevel=1) as tar:  # type: ignore[call-overload]
            info = tarfile.TarInfo(f"{package.stem}/manifest.json")
            info.size, info.mtime, info.mode = len(inner), int(time.time()), perms.FILE_MODE
            tar.addfile(info, io.BytesIO(inner))
            for f, e in zip(files, entries, strict=True):
                tar.add(f, arcname=f"{package.stem}/{e['path']}", recursive=False)
        raw.flush()
        os.fsync(raw.fileno())
    os.chmod(tmp, perms.FILE_MODE)
    os.replace(tmp, package.archive)
    md5 = hashing.md5.hexdigest()
    write_bytes_atomic(package.md5sum, md5sum_line(md5, package.archive.name).encode("ascii"))
    package.write_state(
        {"request": request, "attempts": 0, "next_try": 0.0, "error": "", "created": time.time()}
    )
    manifest["archive"] = {
        "name": package.archive.name,
        "size": hashing.size,
        "md5": md5,
        "sha256": hashing.sha256.hexdigest(),
    }
    write_json_atomic(package.manifest, manifest, durable=True)
    return package


# --- the destination side ---------------------------------------------------------------------

Progress = Callable[[str], None]


class PackageDestination(Destination):
    """A destination whose studies go as packages through the outbox (sftp, https).

    ``send_study`` only writes the package; :meth:`deliver` is what sendFiles calls to put
    one package's files at the remote site, each under a temporary name, verified, then
    renamed into place. A subclass implements :meth:`deliver`, :meth:`check` and
    :meth:`describe`."""

    parallel = 1  # packages sendFiles delivers at the same time

    def __init__(self, name: str, outbox: Path, max_package_bytes: int = 0) -> None:
        super().__init__(name)
        self.outbox = outbox
        self.max_package_bytes = max_package_bytes

    def send_study(self, files: Sequence[Path], context: SendContext) -> SendResult:
        return self.enqueue(files, context, None)

    def enqueue(
        self, files: Sequence[Path], context: SendContext, request: dict[str, Any] | None
    ) -> SendResult:
        """Write the package for sendFiles; ``request``: the transfer request row (its outcome
        goes to the tracker when the package is delivered)."""
        result = SendResult()
        try:
            package = write_package(self.outbox, files, context, request)
        except (OSError, SendError) as exc:
            result.error = (
                f"{self.name}: cannot write the package: {getattr(exc, 'strerror', None) or exc}"
            )
            return result
        size = package.archive.stat().st_size
        if self.max_package_bytes and size > self.max_package_bytes:
            package.manifest.unlink()
            result.error = (
                f"{self.name}: package of {size / 1e9:.2f} GB exceeds the destination's "
                f"limit of {self.max_package_bytes / 1e9:.2f} GB"
            )
            return result
        result.sent = len(files)
        log.info(
            "package written",
            extra={"destination": self.name, "package": package.stem, "files": len(files)},
        )
        return result

    def deliver(self, package: Package, md5: str, progress: Progress) -> str:
        """Put ``package.upload_files()`` at the remote site (temporary name, verified, renamed)
        and return one line saying what was done; SendError (one line) if it could not."""
        raise NotImplementedError


def iter_chunks(fh: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    while chunk := fh.read(size):
        yield chunk
