"""Diffusion detection in each vendor's encoding: the b-values, b0 volumes and distinct
gradient directions counted from generated studies' headers (classic files per vendor, the
standard tags, an enhanced multi-frame file), derived maps left out, and the project rules."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from fionagw.config.qc import DiffusionRule, QcRules
from fionagw.qc.checks import check_diffusion, diffusion_figures
from fionagw.qc.scan import SeriesFacts, StudyFacts, scan_series
from support.synth import SeriesSpec, write_study

# 12 non-collinear directions, then the first three again with the opposite sign (collinear)
DIRS = (
    (1, 0, 0), (0, 1, 0), (0, 0, 1), (0.7071, 0.7071, 0), (0.7071, 0, 0.7071), (0, 0.7071, 0.7071),
    (-0.7071, 0.7071, 0), (0.5774, 0.5774, 0.5774), (-0.5774, 0.5774, 0.5774),
    (0.5774, -0.5774, 0.5774), (0.3, 0.4, 0.866), (0.866, 0.3, 0.4),
    (-1, 0, 0), (0, -1, 0), (0, 0, -1),
)  # fmt: skip
B_VALUES = (0.0, 0.0, 0.0) + (1000.0,) * 15 + (2000.0,) * 15


def dwi(tmp_path: Path, vendor: str) -> list[Path]:
    """33 single-slice volumes: 3 b0, 15 at b=1000 and 15 at b=2000 over DIRS."""
    spec = SeriesSpec(
        "dwi",
        len(B_VALUES),
        "*ep_b{b}",
        ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"),
        slice_thickness=0.0,  # one slice: every image is a volume
        b_values=B_VALUES,
        directions=DIRS,
    )
    return write_study(tmp_path / vendor, vendor=vendor, series=[spec], rows=16, cols=16)


def figures(files: list[Path]) -> dict:
    return diffusion_figures(scan_series(files, SeriesFacts("1.2.3", modality="MR")))


def expected(encoding: str) -> dict:
    return {
        "encoding": encoding,
        "b_values": [0, 1000, 2000],
        "b0_volumes": 3,
        "weighted_volumes": 30,
        "directions": 12,
        "kind": "DTI",
    }


def test_siemens_csa(tmp_path: Path) -> None:
    assert figures(dwi(tmp_path, "SIEMENS")) == expected("siemens-csa")


@pytest.mark.slow  # rewrites every file with pydicom
def test_siemens_private_tags_without_csa(tmp_path: Path) -> None:
    files = dwi(tmp_path, "SIEMENS")
    for f in files:
        ds = pydicom.dcmread(f)
        del ds[0x00291010]  # the CSA image header: only (0019,100C) / (0019,100E) remain
        ds.save_as(f)
    assert figures(files) == expected("siemens")


def test_ge_private_tags(tmp_path: Path) -> None:
    assert figures(dwi(tmp_path, "GE")) == expected("ge")


@pytest.mark.slow  # rewrites every file with pydicom
def test_ge_b_value_with_offset(tmp_path: Path) -> None:
    files = dwi(tmp_path, "GE")
    for f in files:  # some GE software adds 10^9 to (0043,1039)'s b-value
        ds = pydicom.dcmread(f)
        elem = ds.private_block(0x0043, "GEMS_PARM_01")[0x39]
        elem.value = [int(elem.value[0]) + 1_000_000_000, *elem.value[1:]]
        ds.save_as(f)
    assert figures(files)["b_values"] == [0, 1000, 2000]


@pytest.mark.slow  # rewrites every file with pydicom
def test_philips_private_tags(tmp_path: Path) -> None:
    files = dwi(tmp_path, "PHILIPS")
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.DiffusionBValue  # older Philips software: only (2001,1003) and (2005,10B0..B2)
        ds.save_as(f)
    assert figures(files) == expected("philips")


@pytest.mark.slow  # rewrites every file with pydicom
def test_standard_tags(tmp_path: Path) -> None:
    files = dwi(tmp_path, "GE")
    for f in files:
        ds = pydicom.dcmread(f)
        block = ds.private_block(0x0043, "GEMS_PARM_01")
        b = float(block[0x39].value[0])
        acq = ds.private_block(0x0019, "GEMS_ACQU_01")
        direction = [float(acq[o].value) for o in (0xBB, 0xBC, 0xBD)]
        for tag in [t for t in ds.keys() if t.group in (0x0019, 0x0043)]:
            del ds[tag]
        ds.DiffusionBValue = b
        if b > 0:
            ds.DiffusionGradientOrientation = direction
        ds.save_as(f)
    assert figures(files) == expected("standard")


def enhanced(path: Path) -> Path:
    """One enhanced MR file: a frame per volume, MR Diffusion Sequence per frame."""
    frames = []
    k = 0
    for b in B_VALUES:
        item = Dataset()
        item.DiffusionBValue = b
        item.DiffusionDirectionality = "DIRECTIONAL" if b else "NONE"
        if b:
            direction = Dataset()
            direction.DiffusionGradientOrientation = list(DIRS[k % len(DIRS)])
            item.DiffusionGradientDirectionSequence = Sequence([direction])
            k += 1
        group = Dataset()
        group.MRDiffusionSequence = Sequence([item])
        frames.append(group)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.InstanceNumber = "MR", 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    ds.NumberOfFrames = len(B_VALUES)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_enhanced_multiframe(tmp_path: Path) -> None:
    assert figures([enhanced(tmp_path / "enhanced.dcm")]) == expected("enhanced")


def test_derived_maps_are_not_counted(tmp_path: Path) -> None:
    files = dwi(tmp_path, "SIEMENS")
    for f in files[:5]:
        ds = pydicom.dcmread(f)
        ds.ImageType = ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]
        ds.save_as(f)
    facts = scan_series(files, SeriesFacts("1.2.3", modality="MR"))
    assert facts.derived_diffusion == 5
    assert diffusion_figures(facts)["b0_volumes"] == 0  # the first five were the b0 and more


def test_slices_make_one_volume(tmp_path: Path) -> None:
    """Classic files of a multi-slice acquisition: volumes = images over slice positions."""
    spec = SeriesSpec("dwi", 4, b_values=(0.0, 0.0, 0.0, 0.0), slice_thickness=2.0)
    files = write_study(tmp_path / "s", vendor="PHILIPS", series=[spec] * 2, rows=8, cols=8)
    # two series of the same 4 slices at b=0: as one series, 8 images at 4 positions
    facts = scan_series(files, SeriesFacts("1.2.3", modality="MR"))
    assert facts.positions == 4 and diffusion_figures(facts)["b0_volumes"] == 2


@pytest.fixture(scope="module")
def ge_facts(tmp_path_factory: pytest.TempPathFactory) -> StudyFacts:
    files = dwi(tmp_path_factory.mktemp("ge"), "GE")
    return StudyFacts("1.2", series=[scan_series(files, SeriesFacts("1.2.3", "5", "dwi", "MR"))])


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        (DiffusionRule(min_b0=2, min_directions=12, b_values=(0.0, 1000.0)), "pass"),
        (DiffusionRule(min_b0=4), "fail"),
        (DiffusionRule(min_directions=30), "fail"),
        (DiffusionRule(b_values=(3000.0,)), "fail"),
        (DiffusionRule(min_b_values=3), "pass"),
        (DiffusionRule(), "n/a"),
    ],
)
def test_diffusion_rules(ge_facts: StudyFacts, rule: DiffusionRule, status: str) -> None:
    facts = ge_facts
    result = check_diffusion(facts, QcRules(diffusion=rule))
    assert result.status == status, result.details
    assert result.figures["1.2.3"]["directions"] == 12
