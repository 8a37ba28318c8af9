"""Groups in-process on a transfer site (local tracker, folder destination): a study joins by
its called AE, one by hand; the CSV report is made once when the last study is sent, again
when a study joins later, and by schedule; its rows match the tracker and name no patient;
the group-report event reaches a "none" channel with the CSV."""

from __future__ import annotations

import csv
import io
import json

import pydicom
import pytest

from fionagw.arrival import incoming
from fionagw.config import load_config
from fionagw.notify.deliver import send_notifications
from fionagw.notify.events import read_events
from fionagw.notify.groups import (
    GroupError,
    add_studies,
    create_group,
    load_groups,
    make_report,
    report_name,
    run_groups,
)
from fionagw.qc.run import check_study
from fionagw.transfers.anonymize_and_send import AnonymizeAndSend
from support.synth import standard_mr_series, write_study
from support.transfer_site import PATIENT, ingest, request, transfer_site


@pytest.fixture
def site(tmp_path):  # type: ignore[no-untyped-def]
    gen = transfer_site(tmp_path)
    cfg, tracker, outbox, config = next(gen)
    data = json.loads(config.read_text())
    data["notifications"] = {
        "channels": {"keep": {"type": "none"}},
        "subscriptions": [{"events": ["group-report"], "project": "ALPHA", "channel": "keep"}],
    }
    config.write_text(json.dumps(data))
    yield load_config(config), tracker, tmp_path
    next(gen, None)


def _study(cfg, tmp_path, n: int, accession: str):  # type: ignore[no-untyped-def]
    files = write_study(
        tmp_path / f"s{n}",
        vendor="SIEMENS",
        series=standard_mr_series("SIEMENS", 2)[:3],
        **{**PATIENT, "accession": accession},
        seed=n,
    )
    study = ingest(cfg, files)
    check_study(cfg, study)  # as detectStudyArrival does
    return study, files


@pytest.mark.slow  # three studies de-identified and sent in-process (~7 s)
def test_group_reports_on_completion_addition_and_schedule(site) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, tmp_path = site
    create_group(cfg, "COHORT1", "ALPHA", called="^ALPHA_AE$", schedule="0 6 * * *")
    s1, f1 = _study(cfg, tmp_path, 1, "ACC-G1")
    s2, f2 = _study(cfg, tmp_path, 2, "ACC-G2")
    incoming.upsert(cfg, s1, {"called": "ALPHA_AE", "calling": "MODALITY"})
    incoming.upsert(cfg, s2, {"called": "FIONA", "calling": "MODALITY"})
    add_studies(cfg, "COHORT1", [s2])
    request(cfg, tracker, s1, "ALPHA", "ALPHA001", "baseline")
    request(cfg, tracker, s2, "ALPHA", "ALPHA002", "baseline")
    now = load_groups(cfg)["COHORT1"]["scheduled_at"]
    assert run_groups(cfg, tracker, now=now).joined == 1  # s1 by its called AE
    assert load_groups(cfg)["COHORT1"]["studies"] == [s2, s1]
    assert not load_groups(cfg)["COHORT1"]["reports"]  # requested, not sent: not complete
    assert len(AnonymizeAndSend(cfg, tracker, processes=1).run().sent) == 2
    assert run_groups(cfg, tracker, now=now).reports == 1
    assert run_groups(cfg, tracker, now=now).reports == 0  # once
    group = load_groups(cfg)["COHORT1"]
    [report] = group["reports"]
    assert report["reason"] == "complete" and report["studies"] == 2
    path = cfg.datadir / "groups" / "reports" / "COHORT1" / report["file"]
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    by_pseudonym = {r["pseudonym"]: r for r in rows}
    assert set(by_pseudonym) == {"ALPHA001", "ALPHA002"}
    for r in rows:
        [t] = tracker.transfers(study_uid=s1 if r["pseudonym"] == "ALPHA001" else s2)
        assert r["transfer"] == "sent" and r["sent"] == t.transfer_date
        assert r["study_uid"] == t.transfer_mapped_uid and r["event"] == "baseline"
        assert r["qc"] == "passed" and r["series"] == "3"
        assert len(r["study_date"]) == 8 and r["verification"] == ""  # a folder: not asked
    text = path.read_text()
    for f in f1 + f2:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        for value in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.AccessionNumber):
            assert value not in text
    assert PATIENT["patient_id"] not in text and "Nordmann" not in text

    # a study joins later: reported again once it is sent
    s3, _ = _study(cfg, tmp_path, 3, "ACC-G3")
    add_studies(cfg, "COHORT1", [s3])
    request(cfg, tracker, s3, "ALPHA", "ALPHA003", "followup")
    assert run_groups(cfg, tracker, now=now).reports == 0
    AnonymizeAndSend(cfg, tracker, processes=1).run()
    assert run_groups(cfg, tracker, now=now).reports == 1
    # the schedule: 06:00 every day
    assert run_groups(cfg, tracker, now=now + 86400).reports == 1
    reasons = [r["reason"] for r in load_groups(cfg)["COHORT1"]["reports"]]
    assert reasons == ["complete", "complete", "scheduled"]
    types = [e["type"] for e in read_events(cfg)]
    assert types.count("group-completed") == 2 and types.count("group-report") == 3
    assert send_notifications(cfg, tracker).counts["delivered"] == 3
    kept = sorted((cfg.paths.notify / "kept" / "keep").glob("*.csv"))
    assert len(kept) == 3 and all(k.read_bytes().startswith(b"pseudonym,") for k in kept)
    manual = make_report(cfg, tracker, "COHORT1", "manual")
    assert manual.name.startswith("COHORT1_manual_")


def test_bad_groups_are_one_line_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gen = transfer_site(tmp_path)
    cfg, *_ = next(gen)
    with pytest.raises(GroupError, match="bad schedule"):
        create_group(cfg, "G", "ALPHA", schedule="every day")
    with pytest.raises(GroupError, match="bad group name"):
        create_group(cfg, "../x", "ALPHA")
    with pytest.raises(GroupError, match="bad called AE expression"):
        create_group(cfg, "G", "ALPHA", called="(")
    create_group(cfg, "G", "ALPHA")
    with pytest.raises(GroupError, match="exists already"):
        create_group(cfg, "G", "ALPHA")
    with pytest.raises(GroupError, match="no group 'H'"):
        add_studies(cfg, "H", ["1.2.3"])
    assert report_name("{group_name}/{report_type}", "G", "x").startswith("G_x")
    next(gen, None)


def test_bulk_upload_of_a_folder_of_zips_into_a_group(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    from fionagw.notify.groups import SIDECAR_TEMPLATE, upload_folder

    gen = transfer_site(tmp_path)
    cfg, *_ = next(gen)
    create_group(cfg, "BULK", "ALPHA")
    drop = tmp_path / "drop"
    drop.mkdir()
    uids = []
    for n in (1, 2):
        files = write_study(
            tmp_path / f"z{n}",
            vendor="SIEMENS",
            series=standard_mr_series("SIEMENS", 1)[1:2],
            rows=16,
            cols=16,
            seed=40 + n,
        )
        uids.append(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        with zipfile.ZipFile(drop / f"study{n}.zip", "w") as z:
            for f in files:
                z.write(f, f"dicom/{f.name}")
            if n == 2:
                z.writestr(
                    "sidecar.json", json.dumps({**SIDECAR_TEMPLATE, "StudyDescription": "bulk two"})
                )
    (drop / "broken.zip").write_bytes(b"not a zip")
    outcomes = dict(upload_folder(cfg, "BULK", drop, "tester"))
    assert outcomes["broken.zip"].startswith("refused")
    assert outcomes["study1.zip"].endswith("1 study") and outcomes["study2.zip"].endswith("1 study")
    assert sorted(load_groups(cfg)["BULK"]["studies"]) == sorted(uids)
    [stored] = list(cfg.paths.archive_study_dir(uids[1]).iterdir())[:1]
    assert pydicom.dcmread(stored, stop_before_pixels=True).StudyDescription == "bulk two"
    next(gen, None)
