"""Attach (FIONA's applications/Attach): manual upload of a DICOM folder or a ZIP (DICOM, or a
NIfTI set) with optional study name, accession number, age, sex and project.

DICOM enters the pipeline as a network arrival would (calling AE WEBUPLOAD); the study then
shows on Assign once processSingleFile and detectStudyArrival have seen it. The logic,
including every ZIP safety check, is in ``fionagw.upload``."""

from .views import bp

__all__ = ["bp"]
