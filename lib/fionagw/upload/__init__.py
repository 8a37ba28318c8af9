"""Manual upload (the Attach page): a DICOM folder or a ZIP enters the same pipeline as a network
arrival; a NIfTI set is validated and kept under ``DATADIR/uploads/<id>/``.

:func:`accept.accept_upload` runs one upload: the browser's files are staged under
``DATADIR/uploads/.staging/<id>/files`` (:mod:`zipsafe`: names, nested archives and the
:mod:`limits` checked while writing), then :func:`ingest.ingest` sorts them (:mod:`sorting`):

* DICOM files go into the receiver's store and are announced as the SCP announces them
  (:mod:`ingest`); processSingleFile and detectStudyArrival take them from there.
* Study name, accession number, age and sex come from the form, else from a JSON sidecar,
  else stay as the header has them (:mod:`metadata`).
* A NIfTI set is checked and kept (:mod:`nifti`).
* Anything else is reported back by name, never silently dropped.

Every upload gets ``DATADIR/uploads/<id>/metadata.json`` (:mod:`records`). No patient name or
ID is logged: :class:`errors.UploadError` carries a fixed ``kind`` for the log.
"""
