"""The shipped rules mark series that may carry burned-in text CHECKBURNEDINFO (deid/pixels.py
cleans them before they are sent), and never a plain MR or CT acquisition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from fionagw.classify import Connection, RuleSet, read_header, update_series
from support import synth
from support.site import ROOT

SHIPPED = ROOT / "config" / "classifyRules.json"
CONN = Connection("SCANNER", "FIONA", "10.0.0.1")
BURNED = "CHECKBURNEDINFO"


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return RuleSet.load(SHIPPED)


def image(modality: str = "MR", **elements: Any) -> Dataset:
    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = "1.2.3", "1.2.3.4", "1.2.3.4.5"
    ds.Modality = modality
    ds.Manufacturer = "ACME"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SeriesDescription = "t1_mprage"
    for key, value in elements.items():
        setattr(ds, key, value)
    return ds


def types(rules: RuleSet, ds: Dataset) -> set[str]:
    record = update_series(None, ds, CONN, rules, 1)
    return set(record["ClassifyType"])


@pytest.mark.parametrize(
    "changes",
    [
        {"BurnedInAnnotation": "YES"},
        {"Modality": "US", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.6.1"},
        {"Modality": "SC"},
        {"Modality": "OT"},
        {"Modality": "XA", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.12.1"},
        {"Modality": "DOC"},
        {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"},  # secondary capture
        {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7.4"},  # multi-frame true colour SC
        {"ImageType": ["DERIVED", "SECONDARY", "SCREEN SAVE"]},
        {"Modality": "CT", "ImageType": ["DERIVED", "SECONDARY", "SCREEN SAVE"]},
        {"Modality": "CT", "SeriesDescription": "Dose Report"},
        {"Modality": "CR", "ImageType": ["DERIVED", "SECONDARY"]},
        {"OverlayRows": 8, "OverlayColumns": 8, "OverlayData": b"\0" * 8},
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items() if k != "OverlayData")[:60],
)
def test_likely_burned_in(shipped: RuleSet, changes: dict[str, Any]) -> None:
    ds = image(**{k: v for k, v in changes.items() if not k.startswith("Overlay")})
    if "OverlayData" in changes:  # a 60xx group in the second slot: 6002
        ds.add_new(0x60020010, "US", 8)
        ds.add_new(0x60020011, "US", 8)
        ds.add_new(0x60023000, "OW", changes["OverlayData"])
    assert BURNED in types(shipped, ds)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"BurnedInAnnotation": "NO"},
        {"Modality": "CT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2"},
        # reformats and maps of MR / CT are SECONDARY or DERIVED, not screenshots
        {"ImageType": ["DERIVED", "SECONDARY", "MPR"]},
        {"ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]},
        {"Modality": "CT", "ImageType": ["DERIVED", "SECONDARY", "AXIAL", "MIP"]},
        {"SeriesDescription": "screening_t2_tse"},
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items())[:60] or "plain-MR",
)
def test_plain_acquisitions_are_not(shipped: RuleSet, changes: dict[str, Any]) -> None:
    assert BURNED not in types(shipped, image(**changes))


@pytest.mark.parametrize("vendor", ["SIEMENS", "GE", "PHILIPS"])
def test_standard_mr_and_ct_studies_never(shipped: RuleSet, tmp_path: Path, vendor: str) -> None:
    paths = synth.standard_mr_study(tmp_path / "mr", vendor, n_per_series=2)
    paths += synth.ct_study(tmp_path / "ct", vendor, n_images=2)
    records: dict[str, Any] = {}
    for n, path in enumerate(paths, start=1):
        ds = read_header(path)
        uid = f"{ds.Modality}:{ds.SeriesInstanceUID}"
        records[uid] = update_series(records.get(uid), ds, CONN, shipped, n)
    assert len(records) >= 8
    for record in records.values():
        assert BURNED not in record["ClassifyType"], record.get("SeriesDescription")


def test_secondary_capture_study_is(shipped: RuleSet, tmp_path: Path) -> None:
    (path,) = synth.secondary_capture(tmp_path, "GE")
    assert BURNED in update_series(None, read_header(path), CONN, shipped, 1)["ClassifyType"]
