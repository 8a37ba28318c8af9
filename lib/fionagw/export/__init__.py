"""Exports (FIONA's applications/Exports): a project's studies pulled back from its research
PACS and written as zip files for download or a folder destination.

jobs.py     the queue (FIONA's prepared_downloads_list.jobs keys), progress state, secrets
source.py   C-FIND / C-GET of a study from the project's research PACS into a temp folder
build.py    the export types (PURE, NIFTI, DICOM) and the (optionally AES-256) zip
runner.py   createZipFileCmd's pass over the queue
clear.py    clearExports: old temp folders, oldest zips while the area is over its size
"""
