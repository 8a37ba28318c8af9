"""The Groups page in-process: list, details, send report, download it, add a study; a user
without the assign role on the group's project is refused; the Create form shows each
problem at its field and creates the group; the bulk upload takes only a folder under
web.group_drop_folder; every act is in the audit trail."""

from __future__ import annotations

import pytest

from fionagw.config import load_config
from fionagw.notify.events import read_events
from fionagw.notify.groups import add_studies, create_group, load_groups
from fionagw.web.users import UserStore
from support.web import ADMIN, ADMIN_PASSWORD, client_login, csrf_from, web_config


@pytest.mark.slow  # two accounts (password hashing) and a dozen requests: ~4 s
def test_groups_page(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fionaweb import create_app

    drop = tmp_path / "drop"
    (drop / "batch1").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (drop / "link").symlink_to(tmp_path / "elsewhere")
    cfg = load_config(web_config(tmp_path, web={"group_drop_folder": str(drop)}))
    cfg.paths.create()
    create_group(cfg, "COHORT1", "DEMO", called="^DEMO_AE$")
    create_group(cfg, "HIDDEN", "OTHER")
    add_studies(cfg, "COHORT1", ["1.2.826.0.1.3680043.99.1"])
    store = UserStore.for_site(cfg)
    store.add_user(ADMIN, ADMIN_PASSWORD)
    store.grant(ADMIN, "admin")
    store.add_user("ann", "ann-password-1")
    store.grant("ann", "assign", "DEMO")
    app = create_app(cfg)
    client = app.test_client()
    client_login(client, "ann", "ann-password-1")
    html = client.get("/groups/").get_data(as_text=True)
    assert ">COHORT1</a></td><td>DEMO</td><td>1</td>" in html and "HIDDEN" not in html
    assert client.get("/groups/HIDDEN").status_code == 403
    html = client.get("/groups/COHORT1").get_data(as_text=True)
    assert "called AE ^DEMO_AE$" in html and "not every study is done yet" in html
    token = csrf_from(html)
    r = client.post("/groups/COHORT1/report", data={"csrf_token": token})
    assert r.status_code == 302
    [report] = load_groups(cfg)["COHORT1"]["reports"]
    assert report["reason"] == "manual"
    html = client.get("/groups/COHORT1").get_data(as_text=True)
    assert "sendNotifications delivers it" in html and report["file"] in html
    r = client.get(f"/groups/COHORT1/reports/{report['file']}")
    assert r.status_code == 200 and r.get_data().startswith(b"pseudonym,event,study_uid")
    assert client.get("/groups/COHORT1/reports/..%2Fgroups.json").status_code == 404
    r = client.post("/groups/COHORT1/add", data={"csrf_token": token, "study": "9.9.9"})
    html = client.get("/groups/COHORT1").get_data(as_text=True)
    assert "no such study in the gateway" in html
    assert [e["type"] for e in read_events(cfg)] == ["report-generated", "group-report"]
    # the Create form: each problem at its field, nothing created
    html = client.get("/groups/").get_data(as_text=True)
    bad = {"name": "NEW1", "project": "OTHER", "called": "(", "schedule": "every day"}
    r = client.post("/groups/create", data={"csrf_token": csrf_from(html), **bad})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "NEW1" not in load_groups(cfg)
    assert 'id="error-project">not a project of yours' in html
    assert 'id="error-called">bad called AE expression' in html
    assert 'id="error-schedule">bad schedule' in html and 'value="every day"' in html
    good = {"name": "NEW1", "project": "DEMO", "calling": "^CT", "schedule": "0 7 * * 1"}
    r = client.post(
        "/groups/create", data={"csrf_token": csrf_from(html), **good, "by_project": "1"}
    )
    assert r.status_code == 302 and r.location.endswith("/groups/NEW1")
    new = load_groups(cfg)["NEW1"]
    assert new["project"] == "DEMO" and new["schedule"] == "0 7 * * 1"
    assert new["auto"] == {"called": "", "calling": "^CT", "project": True}
    r = client.post("/groups/create", data={"csrf_token": token, **good})
    assert 'id="error-name">group &#39;NEW1&#39; exists already' in r.get_data(as_text=True)
    # bulk upload: only a folder under the drop folder (no "..", no link out of it)
    for folder, problem in (
        (str(tmp_path / "elsewhere"), "not under the drop folder"),
        ("../elsewhere", "not under the drop folder"),
        ("link", "not under the drop folder"),
        ("nothere", "not a folder under"),
        ("batch1", "No ZIP files in that folder"),
    ):
        client.post("/groups/NEW1/upload", data={"csrf_token": token, "folder": folder})
        assert problem in client.get("/groups/NEW1").get_data(as_text=True), folder
    from fionagw.admin.audit import audit_file, read_records

    acts = [(r["action"], r["object"], r["who"]) for _, r, _ in read_records(audit_file(cfg)) if r]
    assert ("group-create", "NEW1", "ann") in acts and ("group-report", "COHORT1", "ann") in acts
    assert ("group-add", "COHORT1", "ann") not in acts  # refused: no act
    assert ("group-upload", "NEW1", "ann") in acts
    # a real ZIP under the drop folder joins the group
    import zipfile

    import pydicom

    from support.synth import standard_mr_series, write_study

    files = write_study(
        tmp_path / "z",
        vendor="SIEMENS",
        series=standard_mr_series("SIEMENS", 1)[1:2],
        rows=16,
        cols=16,
        seed=7,
    )
    with zipfile.ZipFile(drop / "batch1" / "one.zip", "w") as z:
        for f in files:
            z.write(f, f"dicom/{f.name}")
    client.post("/groups/NEW1/upload", data={"csrf_token": token, "folder": str(drop / "batch1")})
    html = client.get("/groups/NEW1").get_data(as_text=True)
    assert "one.zip: " in html and "1 study" in html, html
    uid = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    assert load_groups(cfg)["NEW1"]["studies"] == [uid]
