"""One upload from the browser, start to end: staged under ``DATADIR/uploads/.staging/<id>``,
checked while it is written, filed by :func:`~fionagw.upload.ingest.ingest`, staging removed."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol

from fionagw.config import SiteConfig

from .errors import UploadError
from .ingest import ingest
from .limits import Budget, UploadLimits
from .records import UploadRecord, new_upload_id
from .staging import remove_staging, remove_stale
from .zipsafe import extract_zip, save_file

LOGGER = logging.getLogger(__name__)


class IncomingFile(Protocol):
    """A file of the request (Werkzeug's FileStorage is one): its browser-side name and data."""

    filename: str | None
    stream: IO[bytes]


def accept_upload(
    cfg: SiteConfig,
    limits: UploadLimits,
    *,
    archive: IncomingFile | None,
    folder: Sequence[IncomingFile],
    form: Mapping[str, str],
    user: str,
    project: str,
) -> UploadRecord:
    """Take a ZIP (``archive``) or the files of a folder, exactly one of the two; UploadError
    says why an upload is refused (and nothing of it stays behind)."""
    if bool(folder) == bool(archive):
        raise UploadError(
            "Choose either a folder or a ZIP file to upload (one of the two).", "no single source"
        )
    remove_stale(cfg)
    upload_id = new_upload_id()
    files_dir = cfg.paths.upload_staging_files(upload_id)
    try:
        files_dir.mkdir(parents=True)
        if archive is not None:
            _stage_zip(archive, files_dir, limits)
            source = "zip"
        else:
            budget = Budget(limits)
            for f in folder:
                save_file(files_dir, f.filename or "", f.stream, budget)
            source = "folder"
        return ingest(
            cfg, upload_id, files_dir, dict(form), user=user, project=project, source=source
        )
    except UploadError as exc:
        # the message may name files after the patient: the log gets the kind of problem only
        LOGGER.warning(
            "upload refused", extra={"user": user, "upload_id": upload_id, "problem": exc.kind}
        )
        raise
    finally:
        remove_staging(cfg, upload_id)


def _stage_zip(archive: IncomingFile, files_dir: Path, limits: UploadLimits) -> None:
    name = archive.filename or ""
    if not name.lower().endswith(".zip"):
        raise UploadError(
            f"{name}: not a .zip file (upload a ZIP, or choose the folder instead)", "not a ZIP"
        )
    # the compressed size alone may already be over the limit: refuse before unpacking
    size = archive.stream.seek(0, 2)
    archive.stream.seek(0)
    Budget(limits).add_bytes(size, name)
    extract_zip(archive.stream, files_dir, limits)  # from Werkzeug's spooled copy
