"""Review (FIONA's ReviewDICOMTags): every DICOM tag that remains in a project's de-identified
data, with its distinct values and counts, searchable and exportable as CSV.

The inventory is written by anonymizeAndSend through
``fionagw.transfers.review_inventory.record_files``; these pages only read it. Users need the
review role on the project."""

from .views import bp

__all__ = ["bp"]
