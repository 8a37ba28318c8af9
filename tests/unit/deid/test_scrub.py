"""The free-text scrubber: retained text (Clean Descriptors) keeps its wording and loses every
identifying value of the study, in any character set; the release check then finds nothing."""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian

from fionagw.deid import DeidSettings, check_release, collect_identifiers
from fionagw.deid.batch import deidentify_files
from fionagw.deid.patterns import DATE_LIKE, date_forms
from fionagw.deid.scrub import needles
from support import synth

CLEAN = DeidSettings(
    project="SCRUB",
    secret="scrub-key",
    options=frozenset({"clean_descriptors", "retain_patient_characteristics"}),
)


def _write(path: Path, charset=None, **values) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta.MediaStorageSOPInstanceUID = values.setdefault("SOPInstanceUID", "1.2.3.4.5.1")
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", "1.2.3.4.5"
    ds.Modality = "MR"
    if charset:
        ds.SpecificCharacterSet = charset
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _deid(tmp_path: Path, *files: Path, settings: DeidSettings = CLEAN) -> list[Dataset]:
    """The batch (the engine of fiona deid and anonymizeAndSend) with the release check."""
    ids = collect_identifiers([dcmread(f) for f in files])
    # one destination per input, as the callers name them (by the new SOP Instance UID)
    unique = len({f.name for f in files}) == len(files)
    jobs = [
        (f, tmp_path / "out" / (f.name if unique else f"{f.parent.name}.{f.name}")) for f in files
    ]
    result = deidentify_files(jobs, settings, "P001", "baseline", ids, processes=1)
    assert result.ok, (result.failed, result.hits)
    return [dcmread(p) for p in result.written]


def test_examples_of_the_issue_are_scrubbed_and_the_wording_stays(tmp_path):
    request = Dataset()
    request.RequestedProcedureID = "RP-112234"
    src = _write(
        tmp_path / "a.dcm",
        PatientName="Ek^Per",
        PatientID="12345678901",
        PatientBirthDate="19790228",
        StudyID="G9002",
        RequestAttributesSequence=Sequence([request]),
        ImageComments="StudyID G9002, RP RP-112234; DOB 1979-02-28",
        StudyDescription="MR head PID12345678901",
        SeriesDescription="FA map from DTI of Ek",
        ProtocolName="ep2d_diff_64dir follow-up 12.03.2019",
    )
    (out,) = _deid(tmp_path, src)
    assert out.ImageComments == "StudyID ***, RP ***; DOB ***"
    assert out.StudyDescription == "MR head PID***"
    assert out.SeriesDescription == "FA map from DTI of ***"
    assert out.ProtocolName == "ep2d_diff_64dir follow-up ***"  # dates go, shifted or not


def test_identifiers_of_other_files_and_nested_items_are_scrubbed(tmp_path):
    """The study's identifiers, not only the file's: a name in another file's SR observer."""
    observer = Dataset()
    observer.ValueType, observer.PersonName = "PNAME", "Haugen^Nils"
    first = _write(tmp_path / "a.dcm", PatientName="Ek^Per", ContentSequence=Sequence([observer]))
    second = _write(
        tmp_path / "b.dcm",
        SOPInstanceUID="1.2.3.4.5.2",
        PatientName="Ek^Per",
        SeriesDescription="read by Nils Haugen, tel 55 97 50 00",
        PatientTelephoneNumbers="+47 55975000",
    )
    outs = {o.SOPInstanceUID: o for o in _deid(tmp_path, first, second)}
    assert {o.get("SeriesDescription") for o in outs.values()} >= {"read by *** ***, tel ***"}


def test_text_in_every_character_set_is_scrubbed_and_written_back_in_it(tmp_path):
    cases = [
        (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎", "頭部 山田 太郎 MRI", "頭部 *** MRI"),
        ("GB18030", "Wang^XiaoDong=王^小东", "头部 小东 扫描", "头部 *** 扫描"),
        ("ISO_IR 192", "Øvrebø^Åse", "Hode Åse Øvrebø", "Hode *** ***"),
        (None, "Øvrebø^Åse", "Hode ØVREBØ", "Hode ***"),  # Latin-1, not declared
    ]
    for i, (charset, name, text, expected) in enumerate(cases):
        folder = tmp_path / str(i)
        src = _write(folder / "a.dcm", charset, PatientName=name, StudyDescription=text)
        (out,) = _deid(folder, src)
        assert out.StudyDescription == expected, charset
        raw = dcmread(folder / "out" / "a.dcm")._dict[BaseTag(0x00081030)]
        assert isinstance(raw, RawDataElement)
        if charset and "ISO 2022 IR 87" in charset:
            assert b"\x1b$B" in raw.value  # JIS X 0208 escapes: still ISO 2022
        if charset is None:
            assert raw.value.startswith(b"Hode ***")


def test_text_without_identifiers_is_left_byte_for_byte(tmp_path):
    src = _write(
        tmp_path / "a.dcm",
        PatientName="Ek^Per",
        SeriesDescription="T1 MPRAGE sag 1mm",
        StudyDescription="Hode^MR",
    )
    (out,) = _deid(tmp_path, src)
    assert out.SeriesDescription == "T1 MPRAGE sag 1mm"
    assert out.StudyDescription == "Hode^MR"


def test_scrubbed_synthetic_studies_pass_the_release_check(tmp_path):
    files = synth.standard_mr_study(
        tmp_path / "in",
        "SIEMENS",
        n_per_series=1,
        patient_name="Smithers^Waylon",
        patient_id="MRN31337",
        study_description="Smithers research MRN31337",
    )
    originals = [dcmread(f) for f in files]
    ids = collect_identifiers(originals)
    for out in _deid(tmp_path, *files):
        assert check_release(out, ids) == []
        assert "smithers" not in str(out.get("StudyDescription", "")).lower()


def test_needles_and_forms():
    assert set(needles("patient_name", "Ek^Per")) == {"ek", "per", "ek per", "ek^per"}
    assert "a" not in needles("patient_name", "Ek^Per^A") and "dr" not in needles(
        "patient_name", "Ek^Per^^Dr"
    )
    forms = date_forms("19790228")
    assert {"1979-02-28", "28.02.1979", "28/02/1979", "19790228", "28 feb 1979"} <= set(forms)
    assert {"28. februar 1979", "february 28, 1979", "2/28/1979"} <= set(forms)
    for text in ("1979-02-28", "28.02.1979", "3/4/2019", "20190304", "4 Mar 2019", "May 3, 2019"):
        assert DATE_LIKE.fullmatch(text), text
    for text in ("1.2.840.10008", "3.0.12.4", "T1 3D 20", "12345678", "v2.5.10.1"):
        assert not DATE_LIKE.search(text), text
