"""Filing a staged upload: DICOM goes into the receiver's store exactly as a network arrival
would, a NIfTI set is kept, and the upload's record says what happened to every file.

DICOM files are committed to ``site/archive/scp_<Study>/<MOD>.<SOP>`` with the receiver's own
durable commit (:func:`fionagw.receive.store.store_received`) and announced as the SCP does
(study job in ``.arrived`` + FIFO line, :class:`fionagw.receive.notify.Notifier`) with calling
AE ``WEBUPLOAD``, our AE title as called AE and ip 127.0.0.1: processSingleFile and
detectStudyArrival then treat them like any network arrival.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

import pydicom
from pydicom.dataset import FileMetaDataset

from fionagw.config import SiteConfig
from fionagw.receive import store
from fionagw.receive.notify import Notifier

from .errors import UploadError
from .metadata import apply_metadata, form_metadata, merge_metadata, merged_sidecars
from .nifti import keep_nifti_sets
from .records import Skipped, UploadRecord, save_record
from .sorting import attach_nifti_parts, sort_files
from .staging import TEMP_PREFIX

LOGGER = logging.getLogger(__name__)

CALLING_AE = "WEBUPLOAD"  # the calling AE title uploads are filed under (.arrived, series JSON)
UPLOAD_IP = "127.0.0.1"


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
    """File the staged upload below ``root`` (see the package docstring) and record it.

    UploadError when nothing can be taken (bad metadata, an incomplete NIfTI set, DICOM mixed
    with NIfTI, no usable file); files that are not data are listed in ``skipped``.
    """
    form_meta = form_metadata(form)
    found = sort_files(root)
    attach_nifti_parts(found)
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
        keep_nifti_sets(cfg, record, found.nifti, found.sidecars, form_meta, root)
    elif found.dicom:
        sidecar, used = merged_sidecars(found.sidecars)
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
    LOGGER.info(
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
    tmp = cfg.paths.temp / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}.dcm"
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
