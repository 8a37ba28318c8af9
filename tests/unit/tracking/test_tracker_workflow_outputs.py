"""A workflow job's output.json in both trackers: REDCap (the double, a Workflows project from
config/redcap/Workflows.csv) and the local SQLite tracker hold the same record; a job run again
replaces its record; a REDCap without the Workflows token says so in one line."""

from __future__ import annotations

import pytest

from fionagw.tracking.base import TrackerError
from fionagw.tracking.local import LocalTracker
from fionagw.tracking.records import WorkflowOutput
from fionagw.tracking.redcap import PROJECTS, WORKFLOWS, RedcapTracker


def _output(text: str = '{"images": 12}', job: int = 3) -> WorkflowOutput:
    return WorkflowOutput(
        record_id=f"job_{job}",
        workflow_job=job,
        workflow_stream="mriqc",
        workflow_project="ALPHA",
        workflow_study_instance_uid="1.2.840.99.1",
        workflow_output=text,
        workflow_date="2026-12-04 04:00:00",
    )


def test_an_output_is_stored_replaced_and_read_back_by_study(tmp_path, redcap_client):  # type: ignore[no-untyped-def]
    redcap = RedcapTracker({p: redcap_client(p) for p in (*PROJECTS, WORKFLOWS)})
    local = LocalTracker(tmp_path / "tracker.sqlite", None)
    for tracker in (redcap, local):
        tracker.record_workflow_output(_output())
        assert tracker.workflow_outputs("1.2.840.99.1") == [_output()], tracker.name
        tracker.record_workflow_output(_output('{"images": 13}'))  # the job run again
        tracker.record_workflow_output(_output(job=4))
        assert [o.workflow_output for o in tracker.workflow_outputs()] == [
            '{"images": 13}',
            '{"images": 12}',
        ], tracker.name
        assert tracker.workflow_outputs("1.2.840.99.9") == []


def test_redcap_without_the_workflows_token_says_so(redcap_client):  # type: ignore[no-untyped-def]
    tracker = RedcapTracker({p: redcap_client(p) for p in PROJECTS})
    with pytest.raises(TrackerError, match="no API token for project Workflows"):
        tracker.record_workflow_output(_output())
