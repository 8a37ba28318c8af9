"""Our C-STORE data loop's pure parts: where a file's dataset starts, and P-DATA framing."""

from __future__ import annotations

import io
from pathlib import Path

from pydicom import dcmread
from pydicom.filereader import read_preamble

from fionagw.send.store_scu import StoreAssociation, dataset_offset
from support import synth


def _pydicom_dataset_start(path: Path) -> int:
    from pydicom.filereader import _read_file_meta_info

    with open(path, "rb") as f:
        read_preamble(f, False)
        _read_file_meta_info(f)
        return f.tell()


def test_dataset_offset_is_where_pydicom_ends_the_file_meta(tmp_path):
    files = synth.ct_study(tmp_path, n_images=2, rows=16, cols=16)
    for path in files:
        with open(path, "rb") as f:
            assert dataset_offset(f) == _pydicom_dataset_start(path)
        # the bytes from there decode as the dataset itself
        ds = dcmread(path)
        with open(path, "rb") as f:
            f.seek(dataset_offset(f) or 0)
            tail = f.read()
        assert ds.SOPInstanceUID.encode() in tail


def test_a_file_without_preamble_has_no_offset():
    assert dataset_offset(io.BytesIO(b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100")) is None


def test_frames_fit_the_peer_pdu_and_only_the_last_is_marked_last():
    assoc = StoreAssociation.__new__(StoreAssociation)
    assoc.fragment = 4096 - 6
    block = bytes(range(256)) * 50  # 12,800 bytes: 4 fragments
    frames = assoc._frames(7, block, last=True)
    headers, chunks = frames[0::2], frames[1::2]
    assert b"".join(bytes(c) for c in chunks) == block
    for i, (h, c) in enumerate(zip(headers, chunks, strict=True)):
        pdu_type, pdu_len = h[0], int.from_bytes(h[2:6], "big")
        pdv_len, context, flags = int.from_bytes(h[6:10], "big"), h[10], h[11]
        assert (pdu_type, context) == (4, 7) and pdu_len <= 4096
        assert pdu_len == len(c) + 6 and pdv_len == len(c) + 2
        assert flags == (0x02 if i == len(chunks) - 1 else 0x00)  # data, last fragment
    # a block that is not the file's last carries no last flag at all
    assert all(h[11] == 0 for h in assoc._frames(7, block, last=False)[0::2])


def test_read_instance_gives_pydicoms_meta_values_and_falls_back_to_pydicom(tmp_path):
    """Our meta parse (NUL-padded UIDs included) agrees with pydicom's; what it cannot parse
    goes to pydicom, which refuses a file without preamble or garbage with one clear reason."""
    import pytest
    from pydicom.filereader import read_file_meta_info

    from fionagw.send.dicom import _Unreadable, read_instance

    files = synth.ct_study(tmp_path / "ct", n_images=2, rows=16, cols=16)
    for path in files:
        meta = read_file_meta_info(path)
        inst = read_instance(path)
        assert (inst.sop_class, inst.sop_uid, inst.syntax) == (
            meta.MediaStorageSOPClassUID,
            meta.MediaStorageSOPInstanceUID,
            meta.TransferSyntaxUID,
        )
        assert not inst.sop_uid.endswith("\0")
    no_preamble = tmp_path / "no-preamble.dcm"
    no_preamble.write_bytes(files[0].read_bytes()[128:])
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(b"\0" * 300)
    for bad in (no_preamble, garbage):
        with pytest.raises(_Unreadable, match="not a DICOM Part-10 file"):
            read_instance(bad)
