"""Quarantine copies of finished series: ``DATADIR/quarantine/<Study>_<Series>.{tgz,md5sum,json}``.

FIONA's detectStudyArrival ran ``tar --dereference`` of ``raw/<Study>/<Series>/`` and
``<Series>.json`` through ``pigz --fast`` (or ``gzip -1``), wrote ``md5sum -b`` output beside
it and copied the series JSON. Same three files here, each written atomically (temp file in
the quarantine folder, then rename). The archive members are named relative to DATADIR
(``site/raw/<Study>/<Series>/<SOP>``, ``site/raw/<Study>/<Series>.json``), so
``tar -xzf X.tgz -C $DATADIR`` puts them back where they came from.

The gzip stream is written by :func:`write_tgz`, a parallel deflate in the manner of pigz
but in-process: the tar stream is cut into 1 MiB chunks, worker threads deflate them at
level 1 (zlib releases the GIL) primed with the previous chunk's last 32 KiB, each chunk
ends on a byte boundary (sync flush), the CRC-32s are combined, and the result is one
ordinary single-member gzip file that gzip, pigz, tar and Python read as usual. A chunk
that deflate cannot shrink (a sample of it is tested first: MR/CT pixel noise often does
not compress) is emitted as stored deflate blocks instead of being run through deflate:
level 1 costs ~30 MB/s per core on such data for a 0.03 % gain, storing ~1 GB/s. Measured
on this 2-core machine, see bench/arrival.
"""

from __future__ import annotations

import grp
import hashlib
import logging
import os
import pwd
import queue
import struct
import tarfile
import threading
import time
import zlib
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from fionagw.config import SiteConfig
from fionagw.ops.atomic import write_bytes_atomic
from fionagw.ops.perms import FILE_MODE

LOGGER = logging.getLogger(__name__)

CHUNK = 1 << 20  # bytes of tar stream per deflate job
WINDOW = 32 * 1024  # deflate's window: the dictionary handed to the next chunk
SAMPLE = 1024  # bytes per probe
PROBES = 8  # probes per chunk
STORE_RATIO = 0.90  # a probe compressing to more than this fraction: store the chunk
_GZIP_HEADER = b"\x1f\x8b\x08\x00" + b"\0\0\0\0" + b"\x04\x03"  # no name, mtime 0, fastest, Unix
_FINAL_EMPTY_STORED = b"\x01\x00\x00\xff\xff"


class Member(NamedTuple):
    """One tar member: ``path`` is read (symlinks followed) and stored as ``arcname``."""

    arcname: str
    path: Path
    is_dir: bool = False


@dataclass
class TgzResult:
    md5: str  # hex digest of the .tgz file
    members: int  # members written (directories included)
    skipped: list[str]  # arcnames whose file was missing (a dangling link)
    bytes_in: int  # tar stream size
    bytes_out: int  # .tgz size
    stored_chunks: int
    deflated_chunks: int


@dataclass
class QuarantineResult:
    tgz: Path
    md5sum: Path
    json: Path
    md5: str
    files: int  # series files in the archive
    skipped: list[str]
    bytes_in: int
    bytes_out: int
    seconds: float


# -- CRC-32 of concatenated chunks -------------------------------------------------------------


@lru_cache(maxsize=8)
def _shift_operator(length: int) -> tuple[int, ...]:
    """Columns of the linear map c -> crc32 state advanced over ``length`` zero bytes.

    zlib.crc32(B, v) is affine in v: crc32(B, v) = L(v) ^ crc32(B, 0), with L depending only
    on len(B). So crc(A + B) = L(crc(A)) ^ crc(B): that is crc32_combine, which Python's
    zlib does not expose. L's columns are L(1 << i) = crc32(Z, 1 << i) ^ crc32(Z, 0).
    """
    zeros = bytes(length)
    base = zlib.crc32(zeros, 0)
    return tuple(zlib.crc32(zeros, 1 << i) ^ base for i in range(32))


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from crc32(A), crc32(B) and len(B)."""
    if len2 == 0:
        return crc1
    cols = _shift_operator(len2)
    out, i = crc2, 0
    while crc1:
        if crc1 & 1:
            out ^= cols[i]
        crc1 >>= 1
        i += 1
    return out


# -- deflate of one chunk ---------------------------------------------------------------------

Parts = list[bytes | memoryview]


def _stored_blocks(data: memoryview) -> Parts:
    """``data`` as non-final stored deflate blocks (the stream is byte-aligned here)."""
    parts: Parts = []
    for off in range(0, len(data), 0xFFFF):
        block = data[off : off + 0xFFFF]
        parts.append(struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF))
        parts.append(block)
    return parts


def _compressible(data: memoryview, level: int) -> bool:
    """Would deflate shrink ``data`` by more than 1 - STORE_RATIO? Judged on PROBES slices
    spread over the chunk (a DICOM file is a small compressible header before its pixels)."""
    n = len(data)
    if n <= PROBES * SAMPLE:
        probe = bytes(data)
    else:
        step = n // PROBES  # probe the middle of each 1/PROBES of the chunk
        probe = b"".join(data[i * step + (step - SAMPLE) // 2 :][:SAMPLE] for i in range(PROBES))
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return len(c.compress(probe)) + len(c.flush()) < STORE_RATIO * len(probe)


def _deflate_chunk(
    data: bytearray | memoryview, dictionary: bytes, level: int
) -> tuple[Parts, int, int, bool]:
    """(raw deflate output ending byte-aligned and not final, crc32, length, stored?)."""
    view = memoryview(data)
    crc = zlib.crc32(view)
    if level > 0 and _compressible(view, level):
        c = (
            zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, dictionary)
            if dictionary
            else zlib.compressobj(level, zlib.DEFLATED, -15)
        )
        out = c.compress(view) + c.flush(zlib.Z_SYNC_FLUSH)
        if len(out) < len(view):
            return [out], crc, len(view), False
    return _stored_blocks(view), crc, len(view), True


def _write_all(fd: int, parts: Parts) -> int:
    """writev ``parts`` completely (a regular file may take less than asked)."""
    total = sum(len(p) for p in parts)
    done = os.writev(fd, parts) if parts else 0
    if done < total:
        rest = memoryview(b"".join(parts))[done:]
        while rest:
            rest = rest[os.write(fd, rest) :]
    return total


# -- tar stream ---------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@lru_cache(maxsize=64)
def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def _octal(value: int, width: int) -> bytes:
    text = b"%0*o" % (width - 1, value)
    if value < 0 or len(text) >= width:  # tarfile's GNU header handles these
        raise ValueError("does not fit")
    return text + b"\0"


def _split_name(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) for a ustar header, or None when the path does not fit."""
    if len(name) <= 100:
        return b"", name
    cut = name.find(b"/", max(0, len(name) - 101))
    while 0 < cut <= 155:
        if len(name) - cut - 1 <= 100:
            return name[:cut], name[cut + 1 :]
        cut = name.find(b"/", cut + 1)
    return None


def _header(arcname: str, st: os.stat_result, kind: bytes, size: int) -> bytes:
    """One POSIX ustar header block (readable by every tar); names that do not fit ustar's
    prefix/name fields get tarfile's GNU long-name header instead."""
    name = arcname + "/" if kind == tarfile.DIRTYPE and not arcname.endswith("/") else arcname
    uname, gname = _user(st.st_uid), _group(st.st_gid)
    try:
        split = _split_name(name.encode("utf-8", "surrogateescape"))
        if split is None:
            raise ValueError("long name")
        prefix, short = split
        block = b"".join(
            (
                short.ljust(100, b"\0"),
                _octal(st.st_mode & 0o7777, 8),
                _octal(st.st_uid, 8),
                _octal(st.st_gid, 8),
                _octal(size, 12),
                _octal(int(st.st_mtime), 12),
                b" " * 8,
                kind,
                bytes(100),
                b"ustar\x0000",
                uname.encode()[:32].ljust(32, b"\0"),
                gname.encode()[:32].ljust(32, b"\0"),
                bytes(16),
                prefix.ljust(155, b"\0"),
                bytes(12),
            )
        )
    except ValueError:
        info = tarfile.TarInfo(arcname)
        info.type, info.size, info.mode = kind, size, st.st_mode & 0o7777
        info.mtime, info.uid, info.gid, info.uname, info.gname = (
            int(st.st_mtime),
            st.st_uid,
            st.st_gid,
            uname,
            gname,
        )
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    checksum = b"%06o\0 " % sum(block)
    return block[:148] + checksum + block[156:]


class _Chunker:
    """Fills CHUNK-sized buffers with the tar stream and hands each full one to ``emit``."""

    def __init__(self, emit) -> None:  # type: ignore[no-untyped-def]
        self.emit = emit
        self.buf = bytearray(CHUNK)
        self.pos = 0
        self.total = 0

    def _flush_full(self) -> None:
        if self.pos == CHUNK:
            self.emit(self.buf)
            self.buf, self.pos = bytearray(CHUNK), 0

    def add(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            k = min(len(view), CHUNK - self.pos)
            self.buf[self.pos : self.pos + k] = view[:k]
            self.pos += k
            self.total += k
            view = view[k:]
            self._flush_full()

    def add_file(self, fd: int, size: int) -> None:
        left = size
        while left:
            k = min(left, CHUNK - self.pos)
            got = os.readv(fd, [memoryview(self.buf)[self.pos : self.pos + k]])
            if got == 0:
                raise OSError(f"file shrank while being read ({size - left} of {size} bytes)")
            self.pos += got
            self.total += got
            left -= got
            self._flush_full()

    def pad(self, n: int) -> None:
        if n:
            self.add(bytes(n))

    def finish(self) -> None:
        # GNU tar and tarfile end with two zero blocks, padded to a 10240-byte record.
        self.pad(2 * tarfile.BLOCKSIZE)
        self.pad(-self.total % tarfile.RECORDSIZE)
        if self.pos:
            self.emit(memoryview(self.buf)[: self.pos])
            self.buf, self.pos = bytearray(CHUNK), 0


def write_tgz(
    dest: Path,
    members: Iterable[Member],
    *,
    level: int = 1,
    threads: int | None = None,
    mode: int = FILE_MODE,
) -> TgzResult:
    """Write a gzip-compressed tar of ``members`` (symlinks dereferenced) to ``dest`` atomically.

    Pipeline: this thread reads the files into chunks; ``threads`` workers deflate (or
    store) them and take their CRC-32; a writer thread writes them in order; a hasher
    thread computes the MD5 of the file as written (no second read).
    """
    threads = threads or max(1, os.cpu_count() or 1)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".tmp-{os.getpid()}-{dest.name}")
    md5 = hashlib.md5()
    st = {"crc": 0, "in": 0, "out": 0, "stored": 0, "deflated": 0}
    ordered: queue.Queue[Future | None] = queue.Queue(maxsize=2 * threads + 2)
    to_hash: queue.Queue[Parts | None] = queue.Queue(maxsize=16)
    errors: list[BaseException] = []
    skipped: list[str] = []
    written = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def put_out(parts: Parts) -> None:
        st["out"] += _write_all(fd, parts)
        to_hash.put(parts)

    def writer() -> None:
        try:
            put_out([_GZIP_HEADER])
            while (fut := ordered.get()) is not None:
                if errors:
                    continue  # keep draining so the reader never blocks
                parts, chunk_crc, n, stored = fut.result()
                st["crc"] = crc32_combine(st["crc"], chunk_crc, n)
                st["in"] += n
                st["stored" if stored else "deflated"] += 1
                put_out(parts)
            if not errors:
                put_out([_FINAL_EMPTY_STORED, struct.pack("<II", st["crc"], st["in"] & 0xFFFFFFFF)])
        except BaseException as exc:
            errors.append(exc)
            while ordered.get() is not None:
                pass
        finally:
            to_hash.put(None)

    def hasher() -> None:
        while (parts := to_hash.get()) is not None:
            for part in parts:
                md5.update(part)

    prev_tail = b""

    def emit(chunk: bytearray | memoryview) -> None:
        nonlocal prev_tail
        if errors:
            raise errors[0]
        ordered.put(pool.submit(_deflate_chunk, chunk, prev_tail, level))
        prev_tail = bytes(chunk[-WINDOW:]) if level > 0 else b""

    helpers = [
        threading.Thread(target=writer, name="tgz-writer"),
        threading.Thread(target=hasher, name="tgz-md5"),
    ]
    try:
        with ThreadPoolExecutor(threads, thread_name_prefix="tgz") as pool:
            for t in helpers:
                t.start()
            try:
                chunker = _Chunker(emit)
                for m in members:
                    if m.is_dir:
                        chunker.add(_header(m.arcname, os.stat(m.path), tarfile.DIRTYPE, 0))
                        written += 1
                        continue
                    try:
                        src = os.open(m.path, os.O_RDONLY | os.O_CLOEXEC)
                    except FileNotFoundError:
                        LOGGER.warning(
                            "file vanished (dangling link?); not in the tgz",
                            extra={"file": str(m.path), "tgz": str(dest)},
                        )
                        skipped.append(m.arcname)
                        continue
                    try:
                        info = os.fstat(src)
                        chunker.add(_header(m.arcname, info, tarfile.REGTYPE, info.st_size))
                        chunker.add_file(src, info.st_size)
                    finally:
                        os.close(src)
                    chunker.pad(-info.st_size % tarfile.BLOCKSIZE)
                    written += 1
                chunker.finish()
            finally:
                ordered.put(None)
                for t in helpers:
                    t.join()
        if errors:
            raise errors[0]
        os.fchmod(fd, mode)
        os.close(fd)
        fd = -1
        os.replace(tmp, dest)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return TgzResult(
        md5.hexdigest(), written, skipped, st["in"], st["out"], st["stored"], st["deflated"]
    )


def md5sum_line(hexdigest: str, name: str) -> str:
    """``md5sum -b`` output for one file: ``<hex> *<name>``."""
    return f"{hexdigest} *{name}\n"


def names(cfg: SiteConfig, study_uid: str, series_uid: str) -> tuple[Path, Path, Path]:
    base = cfg.paths.quarantine_base(study_uid, series_uid)
    return (
        base.with_name(base.name + ".tgz"),
        base.with_name(base.name + ".md5sum"),
        base.with_name(base.name + ".json"),
    )


def series_members(
    cfg: SiteConfig, study_uid: str, series_uid: str, files: Iterable[str] | None = None
) -> list[Member]:
    """The series folder, its files (sorted; links followed) and the series JSON."""
    series_dir = cfg.paths.raw_series_dir(study_uid, series_uid)
    rel = series_dir.relative_to(cfg.datadir).as_posix()
    if files is None:
        files = [e.name for e in os.scandir(series_dir) if not e.name.startswith(".")]
    members = [Member(rel, series_dir, True)]
    members += [Member(f"{rel}/{name}", series_dir / name) for name in sorted(files)]
    json_path = cfg.paths.series_json(study_uid, series_uid)
    members.append(Member(json_path.relative_to(cfg.datadir).as_posix(), json_path))
    return members


def quarantine_series(
    cfg: SiteConfig,
    study_uid: str,
    series_uid: str,
    *,
    files: Iterable[str] | None = None,
    series_json: bytes | None = None,
    threads: int | None = None,
) -> QuarantineResult:
    """Write (or re-make) the three quarantine files of one series.

    The old ``.md5sum`` is removed first and the new one written last, so a reader that
    finds a ``.md5sum`` always finds the ``.tgz`` and ``.json`` it belongs to.
    """
    t0 = time.perf_counter()
    tgz, md5sum, json_copy = names(cfg, study_uid, series_uid)
    cfg.paths.quarantine.mkdir(parents=True, exist_ok=True)
    try:
        md5sum.unlink()
    except FileNotFoundError:
        pass
    members = series_members(cfg, study_uid, series_uid, files)
    if series_json is None:
        series_json = cfg.paths.series_json(study_uid, series_uid).read_bytes()
    result = write_tgz(tgz, members, threads=threads)
    write_bytes_atomic(json_copy, series_json, durable=False)
    write_bytes_atomic(md5sum, md5sum_line(result.md5, tgz.name).encode(), durable=True)
    n_files = len(members) - 2 - len(result.skipped)
    return QuarantineResult(
        tgz,
        md5sum,
        json_copy,
        result.md5,
        n_files,
        result.skipped,
        result.bytes_in,
        result.bytes_out,
        time.perf_counter() - t0,
    )


def verify(tgz: Path) -> bool:
    """The ``.md5sum`` beside ``tgz`` matches its content (``md5sum -c``)."""
    try:
        line = tgz.with_suffix(".md5sum").read_text().split()
    except OSError:
        return False
    h = hashlib.md5()
    with open(tgz, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return len(line) == 2 and line[0] == h.hexdigest() and line[1].lstrip("*") == tgz.name
