"""Query/retrieve client of one PACS source (pynetdicom, Study Root): C-FIND at every level,
C-MOVE to our own receiver's AE, or C-GET whose C-STOREs are filed as a network arrival.

Every query and retrieve is logged with the source, the level, counts and an opaque key of
the study (never a UID, name, ID or accession number: the log leaves the clinical zone).
A PACS that cannot be reached, refuses or times out raises PacsError (one line).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from fionagw.config.pacs import PacsSource
from fionagw.pacs.find import (
    PATIENT_ROOT_FIND,
    PENDING,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
    QueryError,
    count,
    find,
    query,
)
from fionagw.send.base import SendError, one_line

if TYPE_CHECKING:
    from pynetdicom.association import Association

    from fionagw.config.site import SiteConfig

log = logging.getLogger("fionagw.pacs")

# what a study and series answer carries (the inventory's columns)
STUDY_KEYS = (
    "StudyInstanceUID",
    "PatientID",
    "AccessionNumber",
    "StudyDate",
    "StudyTime",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_KEYS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "NumberOfSeriesRelatedInstances")


# SOP Instance UIDs in one IMAGE-level retrieve (a multi-valued UID list; 64 bytes each keeps
# the identifier far below any PDU size)
IMAGES_PER_MOVE = 500


class PacsError(Exception):
    """The PACS could not be asked or refused; str() is one line naming the source."""


def opaque(uid: str) -> str:
    """A short key of a UID for logs: the same study gives the same key, the UID is not in it."""
    from fionagw.ops.log import phi_hash

    return phi_hash(uid)[:12]


@dataclass
class Retrieved:
    """The outcome of one C-MOVE or C-GET: its sub-operation counts."""

    completed: int = 0
    failed: int = 0
    warning: int = 0
    status: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.failed == 0

    @property
    def suboperations(self) -> int:
        return self.completed + self.failed + self.warning


class PacsClient:
    """One association with one source; use as a context manager."""

    def __init__(
        self, source: PacsSource, move_destination: str, cfg: SiteConfig | None = None
    ) -> None:
        self.source, self.move_destination, self.cfg = source, move_destination, cfg
        self._peer = source.association_peer()
        self._ae: Any = None
        self._assoc: Association | None = None
        self._notifier: Any = None

    # -- association ----------------------------------------------------------------------

    def __enter__(self) -> PacsClient:
        from pynetdicom import build_context, evt

        contexts = [build_context(STUDY_ROOT_FIND), build_context(PATIENT_ROOT_FIND)]
        ext_neg, handlers = None, None
        if self.source.retrieve == "get":
            from pynetdicom import StoragePresentationContexts
            from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation

            contexts.append(build_context(STUDY_ROOT_GET))
            # 128 contexts at most: GET plus the common storage classes
            storage = StoragePresentationContexts[: 128 - len(contexts)]
            contexts += storage
            ext_neg = []
            for cx in storage:
                role = SCP_SCU_RoleSelectionNegotiation()
                role.sop_class_uid = cx.abstract_syntax
                role.scu_role, role.scp_role = False, True
                ext_neg.append(role)
            handlers = [(evt.EVT_C_STORE, self._on_store)]
        else:
            contexts.append(build_context(STUDY_ROOT_MOVE))
        try:
            self._ae, self._assoc = self._peer.associate_for_query(contexts, ext_neg, handlers)
        except SendError as exc:
            log.warning("PACS not reachable", extra={"source": self.source.name, "error": str(exc)})
            raise PacsError(f"{self.source.name}: {exc}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._assoc is not None:
            self._peer.close(self._ae, self._assoc)
            self._assoc = None

    # -- C-FIND ---------------------------------------------------------------------------

    def find(self, level: str, **keys: str) -> list[Dataset]:
        """The matches of a C-FIND at ``level`` (PATIENT, STUDY, SERIES, IMAGE)."""
        assert self._assoc is not None, "use PacsClient as a context manager"
        started = time.monotonic()
        try:
            model = PATIENT_ROOT_FIND if level == "PATIENT" else STUDY_ROOT_FIND
            matches = find(self._assoc, query(level, **keys), model)
        except QueryError as exc:
            log.warning(
                "C-FIND failed",
                extra={"source": self.source.name, "level": level, "error": str(exc)},
            )
            raise PacsError(f"{self.source.name}: {exc}") from None
        except (RuntimeError, OSError) as exc:
            raise PacsError(f"{self.source.name}: association lost: {one_line(exc)}") from None
        log.info(
            "C-FIND",
            extra={
                "source": self.source.name,
                "level": level,
                "matches": len(matches),
                "ms": round((time.monotonic() - started) * 1000),
            },
        )
        return matches

    def studies(self, **keys: str) -> list[Dataset]:
        """Study-level matches with the inventory's return keys (``keys`` narrow the search)."""
        wanted: dict[str, str] = dict.fromkeys(STUDY_KEYS, "")
        wanted.update(keys)
        return self.find("STUDY", **wanted)

    def series(self, study_uid: str) -> dict[str, int]:
        """Series UID -> the PACS's instance count (NumberOfSeriesRelatedInstances; when the
        PACS leaves it empty, an IMAGE-level C-FIND counts the instances)."""
        out: dict[str, int] = {}
        for ds in self.find("SERIES", StudyInstanceUID=study_uid, **dict.fromkeys(SERIES_KEYS, "")):
            uid = str(ds.get("SeriesInstanceUID", ""))
            n = count(ds, "NumberOfSeriesRelatedInstances")
            if n is None:
                n = len(
                    self.find(
                        "IMAGE",
                        StudyInstanceUID=study_uid,
                        SeriesInstanceUID=uid,
                        SOPInstanceUID="",
                    )
                )
            out[uid] = n
        return out

    def sop_uids(self, study_uid: str, series_uid: str) -> set[str]:
        """The SOP Instance UIDs the PACS holds of one series (IMAGE-level C-FIND)."""
        matches = self.find(
            "IMAGE", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid, SOPInstanceUID=""
        )
        return {str(ds.get("SOPInstanceUID", "")) for ds in matches} - {""}

    # -- C-MOVE / C-GET -------------------------------------------------------------------

    def retrieve(
        self,
        study_uid: str,
        series_uids: Sequence[str] = (),
        instances: Mapping[str, Sequence[str]] | None = None,
    ) -> Retrieved:
        """Retrieve the study, or only ``series_uids`` (whole series), or of a series in
        ``instances`` only those SOP Instance UIDs (IMAGE level): C-MOVE to our receiver, or
        C-GET filed here. Never raises for the PACS's answer: the counts and error say it."""
        total = Retrieved()
        targets: list[Dataset] = []
        for uid in series_uids:
            sops = (instances or {}).get(uid)
            if sops:  # a series that is partly here: only its missing instances
                for n in range(0, len(sops), IMAGES_PER_MOVE):
                    targets.append(
                        query(
                            "IMAGE",
                            StudyInstanceUID=study_uid,
                            SeriesInstanceUID=uid,
                            SOPInstanceUID=list(sops[n : n + IMAGES_PER_MOVE]),
                        )
                    )
            else:
                targets.append(query("SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID=uid))
        if not targets:
            targets.append(query("STUDY", StudyInstanceUID=study_uid))
        for identifier in targets:
            one = self._retrieve_one(identifier)
            total.completed += one.completed
            total.failed += one.failed
            total.warning += one.warning
            total.status = one.status
            if one.error:
                total.error = one.error
                break
        log.info(
            f"C-{self.source.retrieve.upper()}",
            extra={
                "source": self.source.name,
                "study_key": opaque(study_uid),
                "series": len(series_uids) or "all",
                "partial_series": len(instances or {}),
                "completed": total.completed,
                "failed": total.failed,
                "warning": total.warning,
                "error": total.error,
            },
        )
        return total

    def _retrieve_one(self, identifier: Dataset) -> Retrieved:
        assert self._assoc is not None, "use PacsClient as a context manager"
        out = Retrieved()
        if self.source.retrieve == "get":
            self._start_filing()
            responses = self._assoc.send_c_get(identifier, STUDY_ROOT_GET)
        else:
            responses = self._assoc.send_c_move(identifier, self.move_destination, STUDY_ROOT_MOVE)
        what = f"C-{self.source.retrieve.upper()}"
        try:
            for status, _ in responses:
                if "Status" not in status:
                    out.error = f"{self.source.name}: no answer to {what} (timed out or lost)"
                    return out
                code = int(status.Status)
                out.status = code
                for attr, keyword in (
                    ("completed", "NumberOfCompletedSuboperations"),
                    ("failed", "NumberOfFailedSuboperations"),
                    ("warning", "NumberOfWarningSuboperations"),
                ):
                    n = count(status, keyword)
                    if n is not None:
                        setattr(out, attr, n)
                if code in PENDING:
                    continue
                if code not in (0x0000, 0xB000):  # success, or warning: some sub-ops failed
                    comment = str(status.get("ErrorComment", "") or "")
                    out.error = f"{self.source.name}: {what} answered 0x{code:04X}" + (
                        f" ({one_line(comment)})" if comment else _meaning(code)
                    )
                return out
        except (RuntimeError, OSError) as exc:
            out.error = f"{self.source.name}: association lost during {what}: {one_line(exc)}"
            return out
        finally:
            self._stop_filing()
        out.error = f"{self.source.name}: {what} ended without a final status"
        return out

    # -- C-GET's C-STOREs: filed like a network arrival ------------------------------------

    def _start_filing(self) -> None:
        from fionagw.receive.notify import Notifier

        if self.cfg is None:
            raise PacsError("C-GET needs the site (where to file the images)")
        self._notifier = Notifier(self.cfg.paths)
        self._notifier.start()

    def _stop_filing(self) -> None:
        if self._notifier is not None:
            self._notifier.close()
            self._notifier = None

    def _on_store(self, event: Any) -> int:
        """File one instance of a C-GET into the archive and announce it to processSingleFile."""
        from fionagw.receive import store

        assert self.cfg is not None
        tmp = Path(store.temp_path(str(self.cfg.paths.temp)))
        try:
            with open(tmp, "wb") as f:
                f.write(event.encoded_dataset())
            ids = store.read_identifiers(tmp)
            stored = store.store_received(
                self.cfg.paths, tmp, ids.sop_class_uid, ids.sop_instance_uid
            )
        except store.StoreError as exc:
            log.warning("C-GET instance not stored", extra={"error": exc.reason})
            return exc.status
        except Exception as exc:  # a dataset we cannot read: refuse it, keep the rest
            log.warning("C-GET instance not stored", extra={"error": type(exc).__name__})
            return 0xC210
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self._notifier.arrived(
            self.source.called_aetitle,
            self.cfg.aetitle,
            self.source.host,
            stored.study_uid,
            stored.study_dir,
            stored.name,
        )
        return 0x0000


def _meaning(code: int) -> str:
    return {
        0xA801: " (move destination unknown: register our AE title as a modality in the PACS)",
        0xA701: " (out of resources: number of matches)",
        0xA702: " (out of resources: unable to perform sub-operations)",
        0xA900: " (identifier does not match SOP class)",
        0xC000: " (unable to process)",
    }.get(code, "")


@contextmanager
def connect(cfg: SiteConfig, source: str = "") -> Iterator[PacsClient]:
    """A client of ``source`` (default: the configured default) of the site."""
    from fionagw.config.pacs import load_pacs

    settings = load_pacs(cfg)
    try:
        src = settings.source(source)
    except KeyError as exc:
        raise PacsError(str(exc.args[0])) from None
    with PacsClient(src, settings.move_destination, cfg) as client:
        yield client
