"""When detectStudyArrival may complete a study early: a COMPLETED MPPS whose referenced
instances are all in raw/ (never for IN PROGRESS steps, steps without image lists, or a
missing instance)."""

from __future__ import annotations

from pathlib import Path

from fionagw.config import load_config
from fionagw.pacs.mpps_records import COMPLETED, IN_PROGRESS, complete_by_mpps, write_record
from fionagw.pacs.scans import missing_series
from support.site import write_config

STUDY, SERIES = "1.2.3.4", "1.2.3.4.1"


def _site(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = load_config(write_config(tmp_path))
    cfg.paths.create()
    return cfg


def _record(status: str, sops: list[str]) -> dict:
    return {
        "sop_instance_uid": "9.8.7",
        "status": status,
        "study_uids": [STUDY],
        "series": [{"series_uid": SERIES, "images": len(sops), "sop_uids": sops}],
    }


def _file(cfg, *sops: str) -> None:  # type: ignore[no-untyped-def]
    d = cfg.paths.raw / STUDY / SERIES
    d.mkdir(parents=True, exist_ok=True)
    for sop in sops:
        target = cfg.paths.archive / f"MR.{sop}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
        (d / sop).symlink_to(target)


def test_completed_and_all_filed(tmp_path: Path) -> None:
    cfg = _site(tmp_path)
    assert complete_by_mpps(cfg, [STUDY]) == set()  # no scanner/ folder yet
    write_record(cfg, _record(IN_PROGRESS, ["1.1", "1.2"]))
    _file(cfg, "1.1", "1.2")
    assert complete_by_mpps(cfg, [STUDY]) == set()  # still in progress
    write_record(cfg, _record(COMPLETED, ["1.1", "1.2", "1.3"]))
    assert complete_by_mpps(cfg, [STUDY]) == set()  # 1.3 not filed yet
    (cfg.paths.raw / STUDY / SERIES / "1.3").touch()
    assert complete_by_mpps(cfg, [STUDY, "5.6"]) == {STUDY}


def test_completed_without_image_list_waits_for_the_quiet_period(tmp_path: Path) -> None:
    cfg = _site(tmp_path)
    write_record(cfg, _record(COMPLETED, []))
    _file(cfg, "1.1")
    assert complete_by_mpps(cfg, [STUDY]) == set()


def test_missing_series_compares_counts() -> None:
    assert missing_series({"1.1": 3, "1.2": 2, "1.3": 1}, {"1.1": 3, "1.2": 1}) == ["1.2", "1.3"]


def test_qc_integrity_uses_the_mpps_counts(tmp_path: Path) -> None:
    """A series the scanner's MPPS says had one image more than arrived fails integrity."""
    import pydicom

    from fionagw.config.qc import QcRules
    from fionagw.qc.checks import check_integrity
    from fionagw.qc.scan import scan_study
    from support.arrival_site import arrival_mr_study, arrival_site, file_study

    cfg = arrival_site(tmp_path)
    src = arrival_mr_study(tmp_path)
    study = file_study(cfg, src)
    assert check_integrity(scan_study(cfg.paths, study), QcRules()).status == "pass"
    first = sorted((src / "S001").glob("*.dcm"))
    series = str(pydicom.dcmread(first[0], stop_before_pixels=True).SeriesInstanceUID)
    sops = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in first]
    write_record(
        cfg,
        {
            "sop_instance_uid": "9.9.9",
            "status": COMPLETED,
            "study_uids": [study],
            "series": [{"series_uid": series, "images": 4, "sop_uids": [*sops, "1.2.3.999"]}],
        },
    )
    result = check_integrity(scan_study(cfg.paths, study), QcRules())
    assert result.status == "fail"
    assert any("3 images, 4 expected (MPPS)" in d for d in result.details), result.details
