"""FIONA's rewritepixelexclusions (a repeating instrument of DataTransferProjects) reach the
project as (tag, regexp) pairs, which the pixel settings add to the project's exclusions."""

from __future__ import annotations

from pydicom.dataset import Dataset

from fionagw.deid.pixels import exclusion_of
from fionagw.deid.project_settings import pixel_settings_for_project
from fionagw.tracking.redcap import PROJECTS, RedcapTracker


def test_exclusions_read_from_redcap_and_applied(redcap_client) -> None:  # type: ignore[no-untyped-def]
    dtp = redcap_client("DataTransferProjects")
    dtp.import_records(
        [
            {"record_id": "PROJ", "project_name": "PROJ", "project_patient_naming": ".*"},
            {
                "record_id": "PROJ",
                "redcap_repeat_instrument": "rewritepixelexclusions",
                "redcap_repeat_instance": 1,
                "rewrite_ex_tag": "2",
                "rewrite_ex_reg": "^Dose",
            },
            {
                "record_id": "PROJ",
                "redcap_repeat_instrument": "rewritepixelexclusions",
                "redcap_repeat_instance": 2,
                "rewrite_ex_tag": "1",
                "rewrite_ex_reg": "keep pixels",
            },
        ]
    )
    tracker = RedcapTracker({p: redcap_client(p) for p in PROJECTS})
    project = tracker.projects()["PROJ"]
    assert project.pixel_exclusions == [("0008,103E", "^Dose"), ("0020,4000", "keep pixels")]

    settings = pixel_settings_for_project(project)
    ds = Dataset()
    ds.SeriesDescription, ds.ImageComments = "Dose Report", ""
    assert exclusion_of(ds, settings) == "0008,103E"
    ds.SeriesDescription, ds.ImageComments = "Abdomen", "keep pixels please"
    assert exclusion_of(ds, settings) == "0020,4000"
