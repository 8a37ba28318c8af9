"""What the receiver crash tests share: a corpus four storescu senders store, the bytes each
instance must have in the archive, and which files storescu saw answered Success."""

from __future__ import annotations

import re
from pathlib import Path

from pydicom import dcmread
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.uid import generate_uid

from support.site import pydicom_test_file

SENDERS = 4
IMAGES = 60  # per sender (one study each)


def body(path: Path) -> bytes:
    """The data set after the file meta: what storescu sends and we keep as received."""
    with open(path, "rb") as f:
        read_preamble(f, False)
        _read_file_meta_info(f)
        return f.read()


def corpus(root: Path) -> tuple[list[Path], dict[str, bytes]]:
    """SENDERS studies of IMAGES small MR images; {'scp_<Study>/MR.<SOP>': body}."""
    ds = dcmread(pydicom_test_file("MR_small.dcm"))
    del ds[0xFFFCFFFC]  # its trailing padding, which storescu does not send
    dirs, expected = [], {}
    for s in range(SENDERS):
        folder = root / f"study{s}"
        folder.mkdir(parents=True)
        ds.StudyInstanceUID = generate_uid()
        for i in range(IMAGES):
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            path = folder / f"{i:03d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            expected[f"scp_{ds.StudyInstanceUID}/MR.{ds.SOPInstanceUID}"] = body(path)
        dirs.append(folder)
    return dirs, expected


def acknowledged(stderr: str) -> set[str]:
    """The files storescu -v saw answered Success (each response follows its file's line)."""
    done, current = set(), None
    for line in stderr.splitlines():
        if m := re.search(r"Sending file: (.*)$", line):
            current = m.group(1).strip()
        elif "Received Store Response (Success)" in line and current:
            done.add(current)
            current = None
    return done
