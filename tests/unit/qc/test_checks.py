"""The QC checks on real headers of generated studies: lossless, demographics (and the upload
form giving them), integrity (a missing slice, duplicates, expected counts, geometry), required
series and instructions for use; the rules' validation; held, bypassed and passed states."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
import pytest

from fionagw.config.errors import ConfigError
from fionagw.config.projects import ProjectsError, load_projects
from fionagw.config.qc import QcRules, SeriesRule
from fionagw.qc.checks import (
    check_demographics,
    check_ifu,
    check_integrity,
    check_lossless,
    check_series,
)
from fionagw.qc.results import Bypass, Evaluation, StudyQc
from fionagw.qc.scan import SeriesFacts, StudyFacts, demographics_state, scan_series
from fionagw.upload.metadata import apply_metadata, form_metadata
from support.synth import SeriesSpec, write_study


def series(tmp_path: Path, n: int = 6, **spec) -> list[Path]:  # type: ignore[no-untyped-def]
    s = SeriesSpec(spec.pop("description", "t1_mprage"), n, **spec)
    return write_study(tmp_path, vendor="SIEMENS", series=[s], rows=16, cols=16)


def study(files: list[Path], **facts) -> StudyFacts:  # type: ignore[no-untyped-def]
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    age, sex = demographics_state(ds.get("PatientAge"), ds.get("PatientSex"))
    s = scan_series(files, SeriesFacts(ds.SeriesInstanceUID, "1", ds.SeriesDescription, "MR"))
    return StudyFacts(ds.StudyInstanceUID, ds.StudyDescription, age, sex, [s], **facts)


def test_jpeg_baseline_fails_lossless_and_uncompressed_passes(tmp_path: Path) -> None:
    files = series(tmp_path / "in", 2)
    assert check_lossless(study(files), QcRules()).status == "pass"
    lossy = tmp_path / "lossy.dcm"
    subprocess.run(["dcmcjpeg", "+eb", str(files[0]), str(lossy)], check=True)
    result = check_lossless(study([lossy]), QcRules())
    assert result.status == "fail"
    assert result.details[0] == (
        "series 1 (t1_mprage): JPEG Baseline (1.2.840.10008.1.2.4.50)"
    )  # and LossyImageCompression 01, which dcmcjpeg sets
    assert "LossyImageCompression (0028,2110) = 01" in result.details[1]
    lossless = tmp_path / "lossless.dcm"
    subprocess.run(["dcmcjpeg", "+e1", str(files[0]), str(lossless)], check=True)
    assert check_lossless(study([lossless]), QcRules()).status == "pass"


@pytest.mark.parametrize(
    ("syntax", "status"),
    [("1.2.840.10008.1.2.4.91", "fail"), ("1.2.840.10008.1.2.4.90", "pass"),
     ("1.2.840.10008.1.2.4.81", "fail"), ("1.2.840.10008.1.2.5", "pass")],
)  # fmt: skip
def test_possibly_lossy_syntaxes(syntax: str, status: str) -> None:
    facts = StudyFacts("1", series=[SeriesFacts("1.1", syntaxes=[syntax])])
    assert check_lossless(facts, QcRules()).status == status


def test_lossy_flag_on_an_uncompressed_file_fails(tmp_path: Path) -> None:
    files = series(tmp_path, 2)
    ds = pydicom.dcmread(files[1])
    ds.LossyImageCompression = "01"
    ds.save_as(files[1])
    result = check_lossless(study(files), QcRules())
    assert result.status == "fail" and "1 image(s) with LossyImageCompression" in result.details[0]


def test_missing_sex_fails_and_the_upload_form_supplies_it(tmp_path: Path) -> None:
    files = series(tmp_path, 2)
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.PatientSex
        ds.save_as(f)
    result = check_demographics(study(files), QcRules())
    assert result.status == "fail" and result.summary.startswith("sex missing")
    # the Attach page writes the form's values into the stored header (form > sidecar > header)
    meta = form_metadata({"sex": "female", "age": "45"})
    for f in files:
        ds = pydicom.dcmread(f)
        assert apply_metadata(ds, meta)
        ds.save_as(f)
    assert check_demographics(study(files), QcRules()).status == "pass"
    assert check_demographics(study(files), QcRules(demographics=())).status == "n/a"


def test_invalid_age_fails() -> None:
    assert demographics_state("45", "M") == ("invalid", "present")
    assert demographics_state("045Y", "X") == ("present", "invalid")


def test_a_missing_slice_fails_integrity(tmp_path: Path) -> None:
    files = series(tmp_path, 6)
    assert check_integrity(study(files), QcRules()).status == "pass"
    result = check_integrity(study(files[:2] + files[3:]), QcRules())
    assert result.status == "fail"
    assert result.details == ["series 1 (t1_mprage): InstanceNumber 3 missing (5 of 6)"]


def test_duplicate_instance_numbers_and_expected_count_fail(tmp_path: Path) -> None:
    files = series(tmp_path, 4)
    ds = pydicom.dcmread(files[3])
    ds.InstanceNumber = 3  # another SOP Instance UID with number 3
    ds.save_as(files[3])
    for f in files:
        ds = pydicom.dcmread(f)
        ds.ImagesInAcquisition = 5
        ds.save_as(f)
    details = check_integrity(study(files), QcRules()).details
    assert (
        "series 1 (t1_mprage): 1 InstanceNumber(s) shared by different SOP Instance UIDs" in details
    )
    assert "series 1 (t1_mprage): 4 images, 5 expected (ImagesInAcquisition)" in details


def test_inconsistent_geometry_fails(tmp_path: Path) -> None:
    files = series(tmp_path, 3)
    ds = pydicom.dcmread(files[1])
    ds.PixelSpacing = [0.5, 0.5]
    ds.save_as(files[1])
    [detail] = check_integrity(study(files), QcRules()).details
    assert detail.endswith("2 different geometries (rows, columns, pixel spacing, orientation)")


def test_required_series_and_instructions_for_use(tmp_path: Path) -> None:
    files = series(tmp_path, 4, description="neuropacs DTI")
    facts = study(files)
    rules = QcRules(
        series=(SeriesRule("dti", modality="MR", description="^neuropacs DTI$", min_images=4),),
        study_description="^Synthetic study$",
        series_description="^neuropacs DTI$",
    )
    assert check_series(facts, rules).status == "pass"
    assert check_ifu(facts, rules).status == "pass"
    strict = QcRules(
        series=(SeriesRule("dti", description="DTI", min_images=60),),
        study_description="^MRI Brain with DTI Non-Contrast$",
    )
    result = check_series(facts, strict)
    assert result.status == "fail"
    assert result.details == ["dti: series 1 (neuropacs DTI) has 4 images, at least 60 required"]
    assert check_ifu(facts, strict).details == [
        "StudyDescription does not match '^MRI Brain with DTI Non-Contrast$'"
    ]


def test_projects_yml_qc_rules_are_validated(tmp_path: Path) -> None:
    file = tmp_path / "projects.yml"
    file.write_text(
        "projects:\n  P:\n    participant_id: '^P'\n"
        "    qc: {gates: [lossless], diffusion: {min_b0: 2}, series: [{name: dti, min_images: 30}]}\n"
    )
    project = load_projects(file)[0]["P"]
    assert project.qc is not None and project.qc.gates == ("lossless",)
    assert project.qc.diffusion.min_b0 == 2 and project.qc.series[0].min_images == 30
    file.write_text("projects:\n  P:\n    participant_id: '^P'\n    qc: {gates: [losless]}\n")
    with pytest.raises(ProjectsError) as err:
        load_projects(file)
    assert str(err.value) == (
        f"{file}: projects.P.qc.gates[0]: unknown check 'losless' (checks: series, diffusion, "
        "demographics, ifu, lossless, integrity, nifti)"
    )
    file.write_text(
        "projects:\n  P:\n    participant_id: '^P'\n    qc: {diffusion: {min_b0: -1}}\n"
    )
    with pytest.raises(ConfigError, match=r"projects.P.qc.diffusion.min_b0: must be 0 or more"):
        load_projects(file)


def test_held_bypassed_passed() -> None:
    facts = StudyFacts("1")
    from fionagw.qc.results import CheckResult

    failing = [CheckResult("lossless", "fail", ""), CheckResult("ifu", "fail", "")]
    qc = StudyQc("1", 0, None, facts, {"P": Evaluation("P", failing, ["lossless"])})
    assert qc.held_by("P") == ["lossless"] and qc.state("P") == "failed"
    qc.bypasses.append(Bypass("P", ["lossless"], "bob", 0, "why"))
    assert qc.held_by("P") == [] and qc.state("P") == "failed"  # ifu still failed (not a gate)
    qc.bypasses.append(Bypass("P", ["ifu"], "bob", 0, "why"))
    assert qc.state("P") == "bypassed"
    assert StudyQc.from_json(qc.as_json()) == qc
