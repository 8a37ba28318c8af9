"""pytest fixtures for the REDCap double; import them into a test module with

    pytest_plugins = ["redcap_double.fixtures"]

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
DataTransferProjects (with its own REDCap and project_token if asked).
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
