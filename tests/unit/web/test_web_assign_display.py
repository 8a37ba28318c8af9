"""How the Assign list shows values that are absent: no placeholder words as if they were data."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fionagw.arrival.incoming import IncomingEntry
from fionagw.classify.record import NO_DESCRIPTION
from support.web import client_login

pytestmark = pytest.mark.slow


def test_a_study_without_description_shows_a_muted_dash(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    cfg.paths.incoming_list.parent.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    lines = [
        IncomingEntry(now - 60, "1.2.826.0.1.1", {"study_description": NO_DESCRIPTION}).line(),
        IncomingEntry(now - 30, "1.2.826.0.1.2", {"study_description": "Brain research"}).line(),
    ]
    cfg.paths.incoming_list.write_text("\n".join(lines) + "\n")
    client_login(client)
    html = client.get("/assign/").get_data(as_text=True)
    assert "Brain research" in html
    assert ">missing<" not in html and "missing\n" not in html
    assert '<span class="muted" title="no study description">–</span>' in html
