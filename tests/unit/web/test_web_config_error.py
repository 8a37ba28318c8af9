"""A broken projects.yml on the web pages: a clear page instead of a generic 500 (the detail for
an admin, a "contact the administrator" for others), logged once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from support.web import client_login

pytestmark = pytest.mark.slow

BROKEN = {
    "invalid YAML": ("projects:\n  DEMO: [\n", "", "invalid YAML: line 3 column 1"),
    "bad regex": (
        "projects:\n  DEMO:\n    participant_id: '^DEMO[0-9'\n",
        "projects.DEMO.participant_id",
        "not a valid regular expression",
    ),
    "events not a list": (
        "projects:\n  DEMO:\n    participant_id: '^DEMO'\n    events: baseline\n",
        "projects.DEMO.events",
        'expected a list, got "baseline"',
    ),
}
PAGES = ("/assign/", "/attach/", "/review/")


def _projects_file(app: Any) -> Path:
    return app.config["FIONA_CFG"].tracker.projects_file


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_admin_sees_file_key_and_problem(
    app_client: tuple[Any, Any], case: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, client = app_client
    client_login(client)
    text, key, problem = BROKEN[case]
    projects = _projects_file(app)
    projects.write_text(text)
    caplog.set_level(logging.INFO)
    for url in PAGES * 2:
        r = client.get(url)
        html = r.get_data(as_text=True)
        assert r.status_code == 503, (url, html[-2000:])
        assert "The gateway's configuration is broken" in html
        assert f"<code>{projects}</code>" in html and str(escape(problem)) in html, html
        assert (f"<code>{key}</code>" in html) if key else ("<dt>Key</dt>" not in html)
        assert "Traceback" not in html and "Reference" not in html
    logged = [r for r in caplog.records if r.getMessage().startswith("configuration error")]
    assert len(logged) == 1  # six requests, one problem: one entry
    assert logged[0].file == str(projects) and logged[0].key == key and logged[0].exc_info is None
    # corrected: the pages work again without a restart
    projects.write_text("projects:\n  DEMO:\n    participant_id: '^DEMO[0-9]{3}$'\n")
    assert client.get("/assign/").status_code == 200


def test_others_are_told_to_contact_the_administrator(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    store = app.extensions["fiona_users"]
    store.add_user("ivan", "ivan-password-1")
    store.grant("ivan", "assign", "*")
    client_login(client, "ivan", "ivan-password-1")
    projects = _projects_file(app)
    projects.write_text(BROKEN["bad regex"][0])
    r = client.get("/assign/")
    html = r.get_data(as_text=True)
    assert r.status_code == 503
    assert "contact the administrator" in html
    assert str(projects) not in html and "participant_id" not in html and "regular" not in html
