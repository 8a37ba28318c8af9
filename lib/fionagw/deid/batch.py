"""De-identify many files over all cores: ``deidentify_files(jobs, settings, participant,
event, identifiers, processes)``.

Each job is (source file, destination file). Every file is read (writer.read), de-identified
by one Deidentifier per worker process, release-checked when ``identifiers`` is given, and
written through a temporary file and a rename (no fsync: the caller syncs or sends what it
keeps). Worker processes are forked, each set up once; jobs travel in chunks and only paths,
one-line reasons and hits come back, so memory stays flat however many files there are.

The release check looks for the study's ``identifiers`` plus the file's own identifying
values (its UIDs, names and IDs, collected from the original before it is changed, with the
project's retain options), so a caller can build ``identifiers`` from one header per series.
A file with a hit is not written. A file that cannot be read, de-identified or written is a
``failed`` entry with a one-line reason that holds no value from the file; the other files go
on (a file cut short is one: deid/inputcheck.py). ``failed`` and ``hits`` name the source
file; ``written`` lists destinations in job order. An object the engine never sends (an
encapsulated document: engine.DroppedObject) is a ``dropped`` entry (source, one-line
reason) for the caller to record; it does not make the batch fail.

Jobs with one destination (the caller names files by their new SOP Instance UID, so: one
SOP Instance UID) are de-identified once when the sources are the same bytes (``duplicates``);
when the sources differ, none of them is written and each is a ``failed`` entry naming the
others, since the receiver would keep only one of two different objects.
"""

from __future__ import annotations

import filecmp
import multiprocessing
import os
import re
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.errors import InvalidDicomError

from fionagw.deid.engine import Deidentifier, DeidSettings, dropped_reason
from fionagw.deid.factory import deidentifier_for
from fionagw.deid.inputcheck import incomplete_reason
from fionagw.deid.release import (
    Hit,
    Identifiers,
    check_release,
    collect_identifiers,
    retained_kinds,
)
from fionagw.deid.writer import encode, read

CHUNK = 32  # jobs per task: small enough to spread the work, large enough to keep IPC rare


@dataclass
class BatchResult:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (source, one-line reason)
    hits: list[tuple[Path, list[Hit]]] = field(default_factory=list)  # (source, hits)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (source, same as)
    dropped: list[tuple[Path, str]] = field(default_factory=list)  # (source, one-line reason)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.hits


def deidentify_files(
    jobs: Sequence[tuple[Path, Path]],
    settings: DeidSettings,
    participant: str,
    event: str | None,
    identifiers: Identifiers | None = None,
    processes: int | None = None,
) -> BatchResult:
    """De-identify every (source, destination) job; see the module docstring.

    ``processes``: None = os.cpu_count(); 1 = in this process, no pool. Bad settings raise
    ValueError before any file is touched."""
    start = time.perf_counter()
    settings.validate()
    jobs = [(Path(src), Path(dst)) for src, dst in jobs]
    result = BatchResult()
    jobs = _one_per_destination(jobs, result)
    workers = max(1, min(processes or os.cpu_count() or 1, len(jobs)))
    outcomes: dict[int, tuple] = {}
    if workers == 1:
        worker = _new_worker(settings, participant, event, identifiers)
        for index, (src, dst) in enumerate(jobs):
            outcomes[index] = _one(worker, src, dst)
    else:
        numbered = list(enumerate(jobs))
        size = max(1, min(CHUNK, len(jobs) // (4 * workers)))  # >= 4 tasks per worker
        chunks = [numbered[i : i + size] for i in range(0, len(numbered), size)]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_init,
            initargs=(settings, participant, event, identifiers),
        ) as pool:
            futures = [pool.submit(_run, chunk) for chunk in chunks]
            for chunk, future in zip(chunks, futures, strict=True):
                try:
                    outcomes.update(future.result())
                except BrokenProcessPool:
                    for index, (src, _dst) in chunk:
                        outcomes[index] = (
                            "failed",
                            src,
                            "the worker process died (out of memory?)",
                        )
                except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
                    for index, (src, _dst) in chunk:
                        outcomes[index] = ("failed", src, _reason("worker error", exc))
    for index in range(len(jobs)):
        outcome = outcomes[index]
        if outcome[0] == "written":
            result.written.append(outcome[1])
        elif outcome[0] == "hits":
            result.hits.append((outcome[1], outcome[2]))
        elif outcome[0] == "dropped":
            result.dropped.append((outcome[1], outcome[2]))
        else:
            result.failed.append((outcome[1], outcome[2]))
    result.seconds = time.perf_counter() - start
    return result


def _one_per_destination(jobs: list[tuple[Path, Path]], result: BatchResult) -> list:
    """The jobs to run: one per destination (see the module docstring)."""
    by_dst: dict[Path, list[Path]] = {}
    for src, dst in jobs:
        by_dst.setdefault(dst, []).append(src)
    if len(by_dst) == len(jobs):
        return jobs
    refused: set[Path] = set()
    for sources in by_dst.values():
        first, *others = sources
        same = [o for o in others if _same_bytes(first, o)]
        if len(same) == len(others):
            result.duplicates += [(o, first) for o in same]
        else:
            for src in sources:
                names = ", ".join(str(o) for o in sources if o != src)
                result.failed.append(
                    (src, f"same SOP Instance UID as {names} but different content: not sent")
                )
            refused.add(first)
    return [(src, dst) for dst, (src, *_rest) in by_dst.items() if src not in refused]


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        return filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


# --- worker side ----------------------------------------------------------------------------


@dataclass
class _Worker:
    deid: Deidentifier
    participant: str
    event: str | None
    identifiers: Identifiers | None
    options: frozenset[str]
    made: set[Path] = field(default_factory=set)


def _new_worker(
    settings: DeidSettings, participant: str, event: str | None, identifiers: Identifiers | None
) -> _Worker:
    if identifiers is not None:  # what the project retains is no hit, whoever collected it
        kinds, uids = retained_kinds(settings.options)
        identifiers = identifiers.without(kinds, uids=uids)
    return _Worker(
        deidentifier_for(settings), participant, event, identifiers, frozenset(settings.options)
    )


_worker: _Worker | None = None  # one per pool process, set up by _init


def _init(
    settings: DeidSettings, participant: str, event: str | None, identifiers: Identifiers | None
) -> None:
    global _worker
    _worker = _new_worker(settings, participant, event, identifiers)


def _run(chunk: list[tuple[int, tuple[Path, Path]]]) -> list[tuple[int, tuple]]:
    assert _worker is not None
    return [(index, _one(_worker, src, dst)) for index, (src, dst) in chunk]


def _one(w: _Worker, src: Path, dst: Path) -> tuple:
    try:
        ds = read(src)
        incomplete = incomplete_reason(ds)  # cut short, or no SOP/series UID
    except Exception as exc:  # noqa: BLE001 - any unreadable input is one failed entry
        return ("failed", src, _reason("cannot read", exc))
    if incomplete is not None:
        return ("failed", src, f"cannot read: {incomplete}")
    dropped = dropped_reason(ds)
    if dropped is not None:
        return ("dropped", src, dropped)
    try:
        own = None
        if w.identifiers is not None:
            own = _own_identifiers(ds, w)
            w.deid.scrub_identifiers = (w.identifiers, own)  # retained text is cleaned of them
        w.deid.deidentify(ds, w.participant, w.event)
        if own is not None:
            hits = check_release(ds, w.identifiers, own)
            if hits:
                return ("hits", src, hits)
        data = encode(ds)
    except Exception as exc:  # noqa: BLE001 - one broken file must not lose the others
        return ("failed", src, _reason("cannot de-identify", exc))
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        if dst.parent not in w.made:
            dst.parent.mkdir(parents=True, exist_ok=True)
            w.made.add(dst.parent)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return ("failed", src, f"cannot write {dst}: {exc.strerror or type(exc).__name__}")
    return ("written", dst)


def _own_identifiers(ds, w: _Worker) -> Identifiers:  # type: ignore[no-untyped-def]
    """The file's identifying values that the study's identifiers do not already hold."""
    own = collect_identifiers(ds, options=w.options)
    known = w.identifiers
    assert known is not None
    return Identifiers(
        {v: k for v, k in own.values.items() if v not in known.values}, own.uids - known.uids
    )


_TAG_IN_MESSAGE = re.compile(r"\(([0-9A-Fa-f]{4}),\s*([0-9A-Fa-f]{4})\)")


def _reason(what: str, exc: BaseException) -> str:
    """One line naming the kind of problem and, where pydicom names it, the tag; never the
    exception's text, which may quote a value of the file."""
    if isinstance(exc, InvalidDicomError):
        return f"{what}: not a DICOM Part-10 file (no DICM prefix or file meta)"
    if isinstance(exc, FileNotFoundError):
        return f"{what}: no such file"
    if isinstance(exc, OSError):
        return f"{what}: {exc.strerror or type(exc).__name__}"
    if isinstance(exc, EOFError):
        return f"{what}: the file ends in the middle of an element (truncated)"
    tag = _TAG_IN_MESSAGE.search(str(exc))
    where = f" at ({tag.group(1).upper()},{tag.group(2).upper()})" if tag else ""
    return f"{what}: {type(exc).__name__}{where}"
