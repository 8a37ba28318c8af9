"""pytest fixtures for the REDCap double (tests/conftest.py loads this module as a plugin):

redcap_double     a fresh RedcapDouble: Incoming, DataTransferProjects, Routing, CouplingList,
                  AutoID and the research project PROJ (ProjectTemplate), one token each
redcap_session    a requests.Session routed in-process to the double at TEST_URL
                  (``session.redcap_adapter`` is the DoubleAdapter)
redcap_client     factory(project="Incoming", **kwargs) -> RedcapClient on redcap_session,
                  with no backoff sleeping (kwargs override)
redcap_server     the double on a real socket: RunningServer (``.url``, ``.port``, ``.double``)
redcap_secrets    a mode-0600 secrets file with the double's tokens
pycap_inprocess   TEST_URL routed in-process for PyCap's own session (returns the URL)

add_research_project(server, name, naming, own_redcap=False) registers a research project in
DataTransferProjects (with its own REDCap and project_token if asked); incoming_study() and
study_rows() build Incoming rows; post() sends one API request to a double in-process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .app import RedcapDouble
from .server import RunningServer, serve
from .transport import TEST_URL, mount, unmount

RESEARCH_PROJECT = "PROJ"


def add_research_project(
    server: RunningServer, name: str, naming: str, *, own_redcap: bool = False
) -> None:
    """A DataTransferProjects record for ``name`` (active, participant-ID regex ``naming``);
    with ``own_redcap`` also the project's own REDCap and its token in ``project_token``."""
    from fionagw.tracking.redcap_api import RedcapClient

    double = server.double
    row = {
        "record_id": name,
        "project_name": name.title(),
        "project_patient_naming": naming,
        "project_active": "1",
        "projects_complete": "2",
    }
    if own_redcap:
        double.add_project(name)
        row["project_token"] = double.token(name)
    RedcapClient(
        server.url, double.token("DataTransferProjects"), "DataTransferProjects"
    ).import_records([row])


@pytest.fixture
def redcap_double() -> RedcapDouble:
    double = RedcapDouble()
    double.add_project(RESEARCH_PROJECT)
    for name in double.projects:
        double.token(name)
    return double


@pytest.fixture
def redcap_session(redcap_double: RedcapDouble) -> Iterator[requests.Session]:
    session = requests.Session()
    session.redcap_adapter = mount(session, redcap_double.app)  # type: ignore[attr-defined]
    yield session
    session.close()


@pytest.fixture
def redcap_client(
    redcap_double: RedcapDouble, redcap_session: requests.Session
) -> Callable[..., Any]:
    from fionagw.tracking.redcap_api import RedcapClient

    def make(project: str = "Incoming", **kwargs: Any) -> RedcapClient:
        opts: dict[str, Any] = {
            "session": redcap_session,
            "backoff_s": 0.0,
            "sleep": lambda s: None,
            "timeout": 5.0,
        }
        opts.update(kwargs)
        return RedcapClient(TEST_URL, redcap_double.token(project), project, **opts)

    return make


@pytest.fixture
def redcap_server(redcap_double: RedcapDouble) -> Iterator[RunningServer]:
    running = serve(redcap_double)
    yield running
    running.stop()


@pytest.fixture
def redcap_secrets(tmp_path: Path, redcap_double: RedcapDouble) -> Path:
    path = tmp_path / "secrets.json"
    tokens = {name: redcap_double.token(name) for name in redcap_double.projects}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"tokens": tokens}, fh, indent=2)
    return path


@pytest.fixture
def pycap_inprocess(redcap_double: RedcapDouble) -> Iterator[str]:
    from redcap import request as pycap_request

    mount(pycap_request._session, redcap_double.app)
    yield TEST_URL
    unmount(pycap_request._session)


def incoming_study(suid: str, n_series: int = 1) -> list[dict]:
    """Incoming rows of a CT study: its record and ``n_series`` series instances of 5 files."""
    rows = [
        {
            "study_instance_uid": suid,
            "study_description": "CT chest",
            "incoming_studies_complete": "2",
        }
    ]
    rows += [
        {
            "study_instance_uid": suid,
            "redcap_repeat_instrument": "series",
            "redcap_repeat_instance": i,
            "series_instance_uid": f"{suid}.{i}",
            "series_num_files": "5",
            "series_complete": "2",
        }
        for i in range(1, n_series + 1)
    ]
    return rows


SUID = "1.2.826.0.1.3680043.8.498.1"


def study_rows(suid: str = SUID, n_series: int = 2) -> list[dict]:
    """Incoming rows of an MR study with its arrival date; series i has 10 * i files."""
    rows = [
        {
            "study_instance_uid": suid,
            "study_description": "MR brain",
            "study_arrival_date": "2024-05-06 07:08",
            "incoming_studies_complete": "2",
        }
    ]
    for i in range(1, n_series + 1):
        rows.append(
            {
                "study_instance_uid": suid,
                "redcap_repeat_instrument": "series",
                "redcap_repeat_instance": i,
                "series_instance_uid": f"{suid}.{i}",
                "series_num_files": str(10 * i),
                "series_complete": "2",
            }
        )
    return rows


def post(double: RedcapDouble, project: str = "Incoming", **form: object) -> requests.Response:
    """POST an API request (``form`` fields) to the double in-process, with the project's token."""
    session = requests.Session()
    mount(session, double.app)
    data = {"token": double.token(project), "format": "json", "returnFormat": "json", **form}
    return session.post(TEST_URL, data=data)
