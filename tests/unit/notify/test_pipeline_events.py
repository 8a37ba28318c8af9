"""The pipeline's own call sites emit: detectStudyArrival (in-process) records study-stable
and, through its QC, qc-passed, with no name, ID or accession in the event log."""

from __future__ import annotations

from fionagw.arrival.detect import run
from fionagw.notify.events import log_path, read_events
from support.arrival_site import (
    PATIENT_ID,
    PATIENT_NAME,
    age_jobs,
    arrival_mr_study,
    arrival_site,
    file_study,
)


def test_detect_study_arrival_emits_study_stable_and_qc(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = arrival_site(tmp_path)
    study = file_study(cfg, arrival_mr_study(tmp_path))
    age_jobs(cfg)
    run(cfg)  # series
    age_jobs(cfg)
    run(cfg)  # the study
    events = list(read_events(cfg))
    stable = [e for e in events if e["type"] == "study-stable"]
    assert len(stable) == 1 and stable[0]["ref"] == study and stable[0]["details"]["series"] >= 1
    assert "qc-passed" in [e["type"] for e in events] or "qc-failed" in [e["type"] for e in events]
    text = log_path(cfg).read_text()
    for value in (PATIENT_ID, "ACC77", *PATIENT_NAME.split("^")):
        assert value not in text
