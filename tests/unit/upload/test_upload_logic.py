"""Manual upload logic (fionagw.upload): ZIP safety, metadata precedence, NIfTI sets, and
interrupted or partly failed uploads."""

from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path

import pydicom
import pytest

from fionagw.config import SiteConfig, load_config
from fionagw.upload.errors import UploadError
from fionagw.upload.ingest import ingest
from fionagw.upload.limits import Budget, UploadLimits
from fionagw.upload.metadata import form_metadata, normalize_age
from fionagw.upload.records import list_uploads, load_record, new_upload_id
from fionagw.upload.staging import remove_stale, staging_dir
from fionagw.upload.zipsafe import extract_zip, save_file
from support import synth
from support.site import write_config
from support.uploads import LIMITS, make_zip, nifti_set, study_zip


@pytest.fixture
def cfg(tmp_path: Path) -> SiteConfig:
    c = load_config(write_config(tmp_path))
    c.paths.create()
    return c


def refused(zip_path: Path, dest: Path, limits: UploadLimits = LIMITS) -> str:
    with pytest.raises(UploadError) as info:
        extract_zip(zip_path, dest, limits)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- ZIP safety ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil.dcm", "a/../../evil.dcm", "a\\..\\..\\evil.dcm"])
def test_zip_with_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    z = make_zip(tmp_path / "t.zip", {"ok.dcm": b"x", name: b"evil"})
    dest = tmp_path / "out"
    dest.mkdir()
    assert "traversal" in refused(z, dest)
    assert not (tmp_path / "evil.dcm").exists() and not list(dest.rglob("*"))


@pytest.mark.parametrize(
    "name", ["/etc/cron.d/evil", "C:/Windows/evil.dcm", "\\\\server\\share\\x"]
)
def test_zip_with_absolute_names_is_refused(tmp_path: Path, name: str) -> None:
    z = make_zip(tmp_path / "t.zip", {name: b"evil"})
    assert "absolute path" in refused(z, tmp_path)


def test_zip_with_symlink_entry_is_refused(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "t.zip", {"a.dcm": b"x"}, symlinks={"link": "/etc/passwd"})
    dest = tmp_path / "out"
    dest.mkdir()
    message = refused(z, dest)
    assert "symbolic link" in message and "link" in message
    assert not list(dest.rglob("*"))


def test_zip_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    # 3 MB of zeros compress to a few KB: the unpacked size is what counts
    z = make_zip(tmp_path / "bomb.zip", {"a.bin": b"\0" * (3 << 20)})
    assert z.stat().st_size < 100_000
    message = refused(z, tmp_path / "out", UploadLimits(max_bytes=2 << 20))
    assert "larger than the limit of 2 MB" in message


def test_zip_understating_its_sizes_is_stopped_while_unpacking(tmp_path: Path) -> None:
    """A crafted central directory claims 10 bytes; the budget counts what is really written."""
    limits = UploadLimits(max_bytes=1 << 20)
    z = make_zip(tmp_path / "liar.zip", {"a.bin": b"\1" * (4 << 20)})
    data = bytearray(z.read_bytes())
    cd = data.rfind(b"PK\x01\x02")  # the one central directory record: uncompressed size at +24
    struct.pack_into("<I", data, cd + 24, 10)
    z.write_bytes(bytes(data))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UploadError):
        extract_zip(z, dest, limits)
    assert sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) <= limits.max_bytes


def test_zip_with_too_many_entries_is_refused(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "many.zip", {f"f{i}.dcm": b"x" for i in range(6)})
    assert "6 entries, more than the limit of 5" in refused(z, tmp_path, UploadLimits(1 << 20, 5))


def test_nested_archives_are_refused(tmp_path: Path) -> None:
    inner = make_zip(tmp_path / "inner.zip", {"a.dcm": b"x"}).read_bytes()
    z = make_zip(tmp_path / "outer.zip", {"data/inner.zip": inner})
    assert "nested archives are refused" in refused(z, tmp_path / "o1")
    # the same archive under an innocent name is recognised by its first bytes
    z = make_zip(tmp_path / "outer2.zip", {"data/scan0001": inner})
    (tmp_path / "o2").mkdir()
    assert "data/scan0001: an archive inside the upload" in refused(z, tmp_path / "o2")
    gz = gzip.compress(b"x" * 100)
    z = make_zip(tmp_path / "outer3.zip", {"image.tar.gz": gz})
    assert "nested" in refused(z, tmp_path / "o3")


def test_not_a_zip_and_encrypted_entries(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip")
    assert refused(bad, tmp_path) == "the uploaded file is not a readable ZIP archive"
    z = make_zip(tmp_path / "enc.zip", {"a.dcm": b"x"})
    data = bytearray(z.read_bytes())
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" flag bit
        pos = data.find(sig)
        struct.pack_into("<H", data, pos + off, struct.unpack_from("<H", data, pos + off)[0] | 1)
    z.write_bytes(bytes(data))
    assert "encrypted ZIP entry" in refused(z, tmp_path)


def test_folder_upload_names_are_checked_too(tmp_path: Path) -> None:
    budget = Budget(UploadLimits(max_bytes=10, max_entries=2))
    with pytest.raises(UploadError, match="traversal"):
        save_file(tmp_path, "scan/../../x.dcm", io.BytesIO(b"x"), budget)
    save_file(tmp_path, "scan/a.dcm", io.BytesIO(b"12345"), budget)
    assert (tmp_path / "scan" / "a.dcm").read_bytes() == b"12345"
    with pytest.raises(UploadError, match="larger than the limit"):
        save_file(tmp_path, "scan/b.dcm", io.BytesIO(b"1234567"), budget)
    with pytest.raises(UploadError, match="more than 2 files"):
        save_file(tmp_path, "scan/c.dcm", io.BytesIO(b""), budget)


# --- metadata -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("45", "045Y"),
        ("045Y", "045Y"),
        (" 6 m ", "006M"),
        ("10W", "010W"),
        ("3d", "003D"),
        ("90+", "090Y"),
        ("95+", "090Y"),
        (45, "045Y"),
        (45.0, "045Y"),
        ("7 years", "007Y"),
    ],
)
def test_age_is_normalised_to_dicom_as(given: object, expected: str) -> None:
    assert normalize_age(given) == expected


@pytest.mark.parametrize("given", ["old", "-3", "1234", "45X", "4.5"])
def test_bad_age_is_one_clear_line(given: str) -> None:
    with pytest.raises(UploadError, match=r"^Age: .* is not an age"):
        form_metadata({"age": given})


def test_sex_and_text_fields() -> None:
    assert form_metadata(
        {"sex": "female", "study_description": "  Head   CT ", "accession": ""}
    ) == {"sex": "F", "study_description": "Head CT"}
    with pytest.raises(UploadError, match="^Sex: 'X' is not a sex"):
        form_metadata({"sex": "X"})
    with pytest.raises(UploadError, match="^Accession number: at most 16 characters"):
        form_metadata({"accession": "A" * 17})


def test_metadata_precedence_form_then_sidecar_then_header(cfg: SiteConfig, tmp_path: Path) -> None:
    sidecar = json.dumps(
        {"StudyDescription": "from sidecar", "PatientAge": 61, "AccessionNumber": "SIDE1"}
    )
    z, originals = study_zip(
        tmp_path,
        {"CD/info.json": sidecar.encode()},
        accession="HDR1",
        study_description="from header",
    )
    header = pydicom.dcmread(originals[0], stop_before_pixels=True)
    root = tmp_path / "staged"
    root.mkdir()
    extract_zip(z, root, LIMITS)
    record = ingest(
        cfg,
        new_upload_id(),
        root,
        {"study_description": "from form", "age": ""},
        user="alice",
        source="zip",
    )
    assert record.metadata == {
        "study_description": "from form",
        "age": "061Y",
        "accession": "SIDE1",
    }
    assert record.stored == len(originals) and len(record.studies) == 1
    stored = sorted(cfg.paths.archive.glob("scp_*/*"))
    assert len(stored) == len(originals)
    for path in stored:
        ds = pydicom.dcmread(path)
        assert ds.StudyDescription == "from form"  # form wins
        assert (
            ds.PatientAge == "061Y" and ds.AccessionNumber == "SIDE1"
        )  # sidecar where the form is empty
        assert ds.PatientSex == header.PatientSex  # neither gives it: the header's value stays
        assert ds.PatientID == header.PatientID and ds.PixelData  # nothing else touched
    assert load_record(cfg, record.upload_id) == record


def test_conflicting_sidecars_are_refused(cfg: SiteConfig, tmp_path: Path) -> None:
    z, _ = study_zip(tmp_path, {"a.json": b'{"PatientSex": "M"}', "b.json": b'{"sex": "female"}'})
    root = tmp_path / "staged"
    root.mkdir()
    extract_zip(z, root, LIMITS)
    with pytest.raises(UploadError, match="Sex 'F' differs from 'M' in a.json"):
        ingest(cfg, new_upload_id(), root, {})
    assert not list(cfg.paths.archive.glob("scp_*/*"))  # refused before anything was stored


def test_without_metadata_the_bytes_are_stored_unchanged(cfg: SiteConfig, tmp_path: Path) -> None:
    z, originals = study_zip(
        tmp_path, {"README.txt": b"burnt by the CD writer", "DICOMDIR": b"\0" * 10}
    )
    root = tmp_path / "staged"
    root.mkdir()
    extract_zip(z, root, LIMITS)
    record = ingest(cfg, new_upload_id(), root, {}, source="zip")
    assert record.metadata == {}
    by_sop = {
        pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p.read_bytes()
        for p in originals
    }
    for path in cfg.paths.archive.glob("scp_*/*"):
        assert path.read_bytes() == by_sop[path.name.split(".", 1)[1]]
    assert {(s.name, s.reason) for s in record.skipped} == {
        ("README.txt", "not a DICOM file"),
        ("DICOMDIR", "not a DICOM file"),
    }


def test_bare_dataset_without_preamble_is_stored_as_part10(cfg: SiteConfig, tmp_path: Path) -> None:
    (original,) = synth.secondary_capture(tmp_path / "sc")
    ds = pydicom.dcmread(original)
    ds.preamble = None
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    bare = io.BytesIO()
    pydicom.dcmwrite(bare, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert (
        bare.getvalue()[:4] == b"\x08\x00\x05\x00"
    )  # starts with (0008,0005): no preamble, no meta
    root = tmp_path / "staged"
    (root / "IMG").mkdir(parents=True)
    (root / "IMG" / "0001").write_bytes(bare.getvalue())
    record = ingest(cfg, new_upload_id(), root, {"sex": "M"})
    (stored,) = cfg.paths.archive.glob("scp_*/*")
    assert stored.name == f"SC.{ds.SOPInstanceUID}" and record.stored == 1
    again = pydicom.dcmread(stored)
    assert again.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    assert again.PatientSex == "M" and again.PixelData == ds.PixelData


def test_nothing_usable_is_one_line(cfg: SiteConfig, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(
        UploadError,
        match=r"^no DICOM files and no NIfTI set found \(notes.txt: not a DICOM file\)$",
    ):
        ingest(cfg, new_upload_id(), tmp_path, {})


# --- NIfTI ----------------------------------------------------------------------------------


def test_nifti_set_is_validated_and_stored_with_metadata(cfg: SiteConfig, tmp_path: Path) -> None:
    root = tmp_path / "staged"
    nifti_set(root / "dwi")
    (root / "notes.txt").write_text("x")
    record = ingest(
        cfg,
        new_upload_id(),
        root,
        {"sex": "M", "accession": "ACC-N1"},
        user="bob",
        project="DEMO",
        source="zip",
    )
    assert record.kind == "nifti" and record.volumes == 3 and record.status == "stored"
    assert "not available yet" in record.note
    # form > sidecar: sex and accession from the form, age and description from the sidecar
    assert record.metadata == {
        "sex": "M",
        "accession": "ACC-N1",
        "age": "034Y",
        "study_description": "DWI research",
    }
    kept = cfg.paths.uploads / record.upload_id / "files" / "dwi"
    assert sorted(p.name for p in kept.iterdir()) == [
        "sub-01_dwi.bval",
        "sub-01_dwi.bvec",
        "sub-01_dwi.json",
        "sub-01_dwi.nii.gz",
    ]
    saved = json.loads((cfg.paths.uploads / record.upload_id / "metadata.json").read_text())
    assert (
        saved["kind"] == "nifti" and saved["metadata"]["sex"] == "M" and saved["project"] == "DEMO"
    )
    assert [s["name"] for s in saved["skipped"]] == ["notes.txt"]
    assert [r.upload_id for r in list_uploads(cfg)] == [record.upload_id]
    assert not list(cfg.paths.archive.glob("scp_*"))  # nothing entered the DICOM pipeline


def test_nifti_set_problems_are_one_line_each(cfg: SiteConfig, tmp_path: Path) -> None:
    nifti_set(tmp_path / "a", bvals=4)
    with pytest.raises(
        UploadError, match=r"^sub-01_dwi.nii.gz: 3 volumes, but 4 b-values and 4 b-vectors"
    ):
        ingest(cfg, new_upload_id(), tmp_path / "a", {})
    nifti_set(tmp_path / "b", gz=False)
    (tmp_path / "b" / "sub-01_dwi.bvec").unlink()
    with pytest.raises(UploadError, match=r"the NIfTI set is incomplete: missing sub-01_dwi.bvec"):
        ingest(cfg, new_upload_id(), tmp_path / "b", {})
    nifti_set(tmp_path / "c")
    (tmp_path / "c" / "sub-01_dwi.nii.gz").write_bytes(gzip.compress(b"\0" * 400))
    with pytest.raises(UploadError, match="not a NIfTI-1 or NIfTI-2 image"):
        ingest(cfg, new_upload_id(), tmp_path / "c", {})
    nifti_set(tmp_path / "d")
    synth.secondary_capture(tmp_path / "d" / "dicom")
    with pytest.raises(UploadError, match="mixes DICOM files and NIfTI images"):
        ingest(cfg, new_upload_id(), tmp_path / "d", {})
    assert not list_uploads(cfg)


def test_leftovers_of_interrupted_uploads_are_removed(cfg: SiteConfig) -> None:
    import os
    import time

    old, new = new_upload_id(), new_upload_id()
    for upload_id in (old, new):
        (staging_dir(cfg, upload_id) / "files").mkdir(parents=True)
    tmp_old, tmp_new, scp_tmp = (
        cfg.paths.temp / ".upload-1-a.dcm",
        cfg.paths.temp / ".upload-1-b.dcm",
        cfg.paths.temp / ".scp-1-0.dcm",
    )
    for f in (tmp_old, tmp_new, scp_tmp):
        f.write_bytes(b"x")
    day_ago = time.time() - 2 * 86400
    for path in (staging_dir(cfg, old), tmp_old, scp_tmp):
        os.utime(path, (day_ago, day_ago))
    remove_stale(cfg)
    assert not staging_dir(cfg, old).exists() and staging_dir(cfg, new).exists()
    assert not tmp_old.exists() and tmp_new.exists()
    assert scp_tmp.exists()  # the receiver's own temp files are not ours to remove


def test_a_file_that_cannot_be_stored_is_reported_and_the_rest_stored(
    cfg: SiteConfig, tmp_path: Path
) -> None:
    root = tmp_path / "staged"
    blocked = synth.secondary_capture(root / "a", seed=1, study_uid="1.2.826.0.1.3680043.10.77")
    fine = synth.secondary_capture(root / "b", seed=2, study_uid="1.2.826.0.1.3680043.10.78")
    cfg.paths.archive_study_dir("1.2.826.0.1.3680043.10.77").write_text(
        "a file where a folder must go"
    )
    record = ingest(cfg, new_upload_id(), root, {})
    assert record.stored == len(fine) and record.studies == ["1.2.826.0.1.3680043.10.78"]
    (skipped,) = record.skipped
    assert skipped.name == blocked[0].relative_to(root).as_posix()
    assert skipped.reason.startswith("not stored: cannot write ")
