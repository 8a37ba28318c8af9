"""The Projects page in-process: a project created on the page is in projects.yml as the
tracker reads it (and assignable on Assign), an invalid value is shown at its field with
nothing written, an edit keeps the keys the page does not show, and the live ID example."""

from __future__ import annotations

import re
from typing import Any

import yaml

from fionagw.admin import audit
from fionagw.web.assign_queries import assignable_projects
from support.web import client_login, csrf_from


def _save(client: Any, data: dict[str, Any]) -> Any:
    token = csrf_from(client.get("/projects/").get_data(as_text=True))
    return client.post("/projects/save", data={**data, "csrf_token": token})


def _field_html(html: str, section: str, key: str) -> str:
    part = html[html.index(f'id="{section}"') :]
    m = re.search(rf'data-field="{re.escape(key)}">(.*?)</div>', part, re.S)
    assert m, (section, key)
    return m.group(1)


def test_a_project_made_on_the_page_is_the_trackers(app_client: tuple[Any, Any]) -> None:
    from fionagw.tracking.factory import open_tracker
    from fionagw.web.users import User

    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    client_login(client)
    r = _save(client, {"new": "1", "name": "STUDY1", "title": "A study", "active": "true",
                       "participant_id": "^S1-[0-9]{4}$", "events": "baseline, week4",
                       "deid.mode": "keyed", "deid.date_mode": "shift", "deid.range_low": "-100",
                       "deid.range_high": "-10",
                       "deid.options": ["retain_patient_characteristics", "clean_descriptors"]})  # fmt: skip
    assert r.status_code == 303, r.get_data(as_text=True)
    spec = yaml.safe_load(cfg.tracker.projects_file.read_text())["projects"]["STUDY1"]
    assert spec["events"] == ["baseline", "week4"] and spec["participant_id"] == "^S1-[0-9]{4}$"
    assert spec["deid"]["date_shift_range"] == [-100, -10]
    assert spec["deid"]["options"] == ["retain_patient_characteristics", "clean_descriptors"]
    tracker = open_tracker(cfg)
    try:
        admin = User("admin", frozenset({("", "admin")}))
        assert "STUDY1" in assignable_projects(tracker, admin)
        assert tracker.projects()["STUDY1"].valid_participant("S1-0042")
    finally:
        tracker.close()
    page = client.get("/projects/").get_data(as_text=True)
    assert "S1-0000" in _field_html(page, "project-STUDY1", "participant_id")  # the example
    [rec] = audit.search(cfg, action="project-add")
    assert rec["object"] == "STUDY1" and rec["who"] == "admin"


def test_invalid_values_are_shown_at_the_field_and_nothing_written(
    app_client: tuple[Any, Any],
) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    client_login(client)
    before = cfg.tracker.projects_file.read_bytes()
    base = {"name": "DEMO", "active": "true", "participant_id": "^DEMO[0-9]{3}$"}
    for data, section, key, text in (
        ({**base, "participant_id": "^DEMO[0-9"}, "project-DEMO", "participant_id", "regular expression"),
        ({**base, "deid.range_low": "x", "deid.range_high": "-1"}, "project-DEMO", "deid.range_low", "whole numbers"),
        ({**base, "deid.private_keep": "not-a-tag"}, "project-DEMO", "deid.private_keep", "not-a-tag"),
        ({"new": "1", "name": "AB", "participant_id": "^A$"}, "new-project", "name", "5-20"),
        ({"new": "1", "name": "DEMOX", "participant_id": ""}, "new-project", "participant_id", "required"),
    ):  # fmt: skip
        r = _save(client, data)
        html = r.get_data(as_text=True)
        assert r.status_code == 400, html
        assert text in _field_html(html, section, key), (key, html[:3000])
        assert cfg.tracker.projects_file.read_bytes() == before
    assert audit.search(cfg) == []


def test_an_edit_keeps_what_the_page_does_not_show_and_the_live_example(
    app_client: tuple[Any, Any],
) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    doc = yaml.safe_load(cfg.tracker.projects_file.read_text())
    doc["projects"]["DEMO"]["routing"] = [{"called_aetitle": "DEMO", "patient_id": "^DEMO"}]
    cfg.tracker.projects_file.write_text(yaml.safe_dump(doc))
    client_login(client)
    r = _save(client, {"name": "DEMO", "title": "Demo project", "participant_id": "^DEMO[0-9]{3}$", "events": "baseline",
                       "deid.options": ["clean_descriptors", "retain_patient_characteristics",
                                        "clean_structured_content"]})  # fmt: skip
    assert r.status_code == 303
    spec = yaml.safe_load(cfg.tracker.projects_file.read_text())["projects"]["DEMO"]
    assert spec["active"] is False and spec["events"] == ["baseline"]
    assert spec["routing"] == [{"called_aetitle": "DEMO", "patient_id": "^DEMO"}]
    assert list(cfg.tracker.projects_file.parent.glob("projects.yml.2*"))
    [rec] = audit.search(cfg, action="project-change")
    assert rec["changed"] == ["active", "events"]
    j = client.get("/projects/example?pattern=%5EAB%5B0-9%5D%7B2%7D%24", headers={"Accept": "application/json"}).get_json()  # fmt: skip
    assert j["ok"] and "AB00" in j["text"]
    assert client.get("/projects/example?pattern=%5B").get_json()["ok"] is False


def test_with_redcap_the_projects_are_read_only(
    tmp_path: Any, redcap_server: Any, redcap_secrets: Any
) -> None:
    """REDCap's DataTransferProjects are listed with the note where to change them; a save is
    refused and nothing is written."""
    from fionagw.config import load_config
    from fionagw.web.users import UserStore
    from fionaweb import create_app
    from support.redcap_double.fixtures import add_research_project
    from support.web import ADMIN, ADMIN_PASSWORD, web_config

    add_research_project(redcap_server, "REDPROJ", "^RP[0-9]{3}$")
    tracker = {
        "backend": "redcap",
        "redcap_url": redcap_server.url,
        "secrets_file": str(redcap_secrets),
    }
    cfg = load_config(web_config(tmp_path, tracker=tracker))
    store = UserStore.for_site(cfg)
    store.add_user(ADMIN, ADMIN_PASSWORD)
    store.grant(ADMIN, "admin")
    client = create_app(cfg).test_client()
    client_login(client)
    page = client.get("/projects/").get_data(as_text=True)
    assert 'id="redcap-note"' in page and "REDPROJ" in page and "^RP[0-9]{3}$" in page
    r = _save(client, {"new": "1", "name": "NEWPROJ", "participant_id": "^N$"})
    assert r.status_code == 400 and "change them there" in r.get_data(as_text=True)


def test_pixel_cleaning_and_qc_gates_are_saved_and_checked_at_the_field(
    app_client: tuple[Any, Any],
) -> None:
    """deid.pixels.enabled / mode and qc gates / descriptions reach projects.yml as the
    pipeline reads them; a bad gate regex is shown at its field with nothing written."""
    from fionagw.config.projects import load_projects
    from fionagw.deid.project_settings import pixel_settings_for_project

    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    client_login(client)
    base = {"name": "DEMO", "active": "true", "participant_id": "^DEMO[0-9]{3}$"}
    before = cfg.tracker.projects_file.read_bytes()
    for data, key, text in (
        ({**base, "qc.study_description": "^MRI["}, "qc.study_description", "regular expression"),
        ({**base, "deid.pixels.mode": "some"}, "deid.pixels.mode", "identifying"),
    ):
        r = _save(client, data)
        assert r.status_code == 400
        assert text in _field_html(r.get_data(as_text=True), "project-DEMO", key)
        assert cfg.tracker.projects_file.read_bytes() == before
    r = _save(client, {**base, "deid.pixels.enabled": "false", "deid.pixels.mode": "all",
                       "qc.gates": ["lossless", "demographics"],
                       "qc.study_description": "^MRI Brain$"})  # fmt: skip
    assert r.status_code == 303, r.get_data(as_text=True)
    project = load_projects(cfg.tracker.projects_file)[0]["DEMO"]
    pixels = pixel_settings_for_project(project, cfg)
    assert pixels.enabled is False and pixels.mode == "all"
    assert project.qc is not None and project.qc.gates == ("lossless", "demographics")
    assert project.qc.study_description == "^MRI Brain$"
    page = client.get("/projects/").get_data(as_text=True)
    assert 'value="false" selected' in _field_html(page, "project-DEMO", "deid.pixels.enabled")
    assert 'value="lossless" checked' in _field_html(page, "project-DEMO", "qc.gates")
    r = _save(client, {**base, "deid.pixels.enabled": "true", "qc.gates": []})
    assert r.status_code == 303
    project = load_projects(cfg.tracker.projects_file)[0]["DEMO"]
    assert pixel_settings_for_project(project, cfg).enabled is True
    assert project.qc is None  # no gates, no descriptions: the qc key is gone
