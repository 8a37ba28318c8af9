"""pydicom's bundled test files through the batch (de-identify, release check, write) in keyed
mode with Clean Descriptors, in FIONA mode and with the project default: every file goes out
with no identifying value of its original left, or is refused for a stated reason: input that
cannot be read, or a release-check hit that is a true one (the element really holds an
original value). A check independent of the release check's own collection decides both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset

from fionagw.deid import DeidSettings, collect_identifiers, deidentifier_for
from fionagw.deid.batch import deidentify_files
from fionagw.deid.profile import DEFAULT_OPTIONS
from support.deid_eval.score import _present, _texts, element_text, true_hit

pytestmark = pytest.mark.slow

MODES = {
    "keyed": DeidSettings(
        project="PYD",
        secret="pydicom-files",
        options=frozenset({"clean_descriptors", "retain_patient_characteristics"}),
    ),
    "fiona": DeidSettings.fiona("PYD"),
    "default": DeidSettings(project="PYD", secret="pydicom-files", options=DEFAULT_OPTIONS),
}
IDENTITY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "AccessionNumber",
    "OtherPatientIDs",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "InstitutionName",
    "DeviceSerialNumber",
    "StationName",
    "PerformedStationName",
    "PerformedStationAETitle",
)
_INSTANCE = re.compile(r"(InstanceUID|FrameOfReferenceUID)$")


def _originals(ds: Dataset) -> tuple[list[str], set[str]]:
    """The original's identifying values (names as parts of 2+ letters) and instance UIDs,
    read by keyword at any depth, without the release check's collector."""
    values: list[str] = []
    uids: set[str] = set()
    for elem in ds.iterall():
        keyword = elem.keyword or ""
        if elem.VR == "UI" and _INSTANCE.search(keyword) and elem.value:
            for v in elem.value if isinstance(elem.value, list) else [elem.value]:
                if "." in str(v) and not str(v).startswith("1.2.840.10008."):  # not junk "0"
                    uids.add(str(v))
        elif keyword in IDENTITY and elem.value not in (None, ""):
            text = str(elem.value)
            if elem.VR == "PN":
                values += [p for p in re.split(r"[\^= ]+", text) if len(p) >= 3]
            elif len(text.strip()) >= 3:
                values.append(text.strip())
    return [v for v in values if v.upper() not in ("ANONYMIZED", "ANONYMOUS")], uids


def _readable(path: str) -> Dataset | None:
    try:
        return dcmread(path)
    except Exception:  # noqa: BLE001 - a deliberately broken test file
        return None


def run_corpus(files: list[str], mode: str, work: Path) -> tuple[dict, dict, list[str]]:
    """Each file through the batch on its own: (counts, refusal reasons, problems)."""
    settings = MODES[mode]
    engine = deidentifier_for(settings)
    counts = {"written": 0, "unreadable": 0, "hits (true)": 0, "failed": 0}
    problems: list[str] = []
    reasons: dict[str, int] = {}
    for i, src in enumerate(sorted(files)):
        name = Path(src).name
        original = _readable(src)
        if original is None or "PixelData" in original and "SOPInstanceUID" not in original:
            counts["unreadable"] += 1
            continue
        ids = collect_identifiers(original)
        dst = work / mode / f"{i}.dcm"
        result = deidentify_files([(Path(src), dst)], settings, "PYD001", "baseline", ids, 1)
        values, uids = _originals(original)
        if result.written:
            counts["written"] += 1
            out = dcmread(dst)
            text = _texts(out) + "\0" + _texts(out.file_meta)
            left = [v for v in values if _present(v, text)]
            left += [u for u in uids if u in dst.read_bytes().decode("latin-1")]
            if left:
                problems.append(f"{name}: identifying value left: {left}")
        elif result.hits:
            ds = dcmread(src)
            engine.scrub_identifiers = (ids, collect_identifiers(ds))
            unchecked = engine.deidentify(ds, "PYD001", "baseline")
            for hit in result.hits[0][1]:
                text = element_text(unchecked, hit.path)
                if not true_hit(text, values + _variants(values), uids):
                    problems.append(f"{name}: release-check false positive: {hit}")
            counts["hits (true)"] += 1
        else:
            reason = result.failed[0][1]
            counts["failed"] += 1
            reasons[reason] = reasons.get(reason, 0) + 1
            if not reason.startswith("cannot read"):
                problems.append(f"{name}: {reason}")
    return counts, reasons, problems


@pytest.mark.parametrize("mode", list(MODES))
def test_every_pydicom_test_file_goes_out_clean_or_is_refused_for_a_true_reason(
    mode, tmp_path, capsys
):  # type: ignore[no-untyped-def]
    counts, reasons, problems = run_corpus(get_testdata_files(), mode, tmp_path)
    with capsys.disabled():
        print(f"\npydicom test files, {mode}: {counts}")
        for reason, n in sorted(reasons.items()):
            print(f"    refused {n}x: {reason}")
        for line in problems:
            print(f"    {line}")
    assert counts["written"] > 100
    assert problems == []


def _variants(values: list[str]) -> list[str]:
    """Birth dates also as they are found in DT values and free text (the check's forms)."""
    out = []
    for v in values:
        if re.fullmatch(r"\d{8}", v):
            out += [f"{v[:4]}-{v[4:6]}-{v[6:]}", f"{v[6:]}.{v[4:6]}.{v[:4]}"]
    return out
