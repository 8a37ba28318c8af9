"""Exports (FIONA's applications/Exports): for a project, request an export of a participant's
studies (PURE, NIFTI, DICOM; optionally an AES-256 zip), watch the queue's progress, download
the finished files. The logic is in ``fionagw.web.exports_page``."""

from .views import bp

__all__ = ["bp"]
