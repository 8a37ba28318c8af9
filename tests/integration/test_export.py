"""Exports end to end: Orthanc as the project's research PACS holding two studies (C-STOREd
with storescu), createZipFileCmd pulling them by C-GET: a PURE export has Orthanc's SOP UIDs
and count, a NIfTI export of a diffusion series has matching bval/bvec and volumes (nibabel),
an AES-256 zip opens only with its password, a missing study fails with its UID named after
its attempts; the Exports page (Flask test client) queues, shows progress, downloads, and a
user of another project can neither see nor download. One Orthanc, one site for the module."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nibabel
import pytest
import pyzipper

from fionagw.config import load_config
from fionagw.export import jobs as q
from fionagw.export.settings import load_exports
from fionagw.web.users import UserStore
from support.site import run_bin, storescu, write_config
from support.synth import _DIRS, SeriesSpec, write_study
from support.web import PROJECTS_YML, client_login, csrf_from

pytestmark = pytest.mark.slow

PASSWORD = "correct-horse-battery-9"
B_VALUES = (0, 1000, 1000, 1000, 1000, 1000, 1000, 2000, 2000, 2000, 2000, 2000, 2000)
BASELINE = {0x00080090: ("PN", "EventName:baseline")}  # as the de-identification writes it
FOREIGN = "1.2.826.0.1.3680043.2.99.7"  # a study of project OTHER in the same research PACS
PROJECTS = PROJECTS_YML.replace(
    "    active: true\n  OTHER:", "    active: true\n    destination: research-pacs\n  OTHER:"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory, orthanc_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("export-site")
    research = orthanc_factory("RESEARCH")
    write_study(
        tmp / "pure",
        series=[
            SeriesSpec("t1_mprage sag", 3, extra=BASELINE),
            SeriesSpec("t2 tse/tra", 2, extra=BASELINE),
        ],
        patient_id="DEMO001",
        accession="ACC1",
    )
    dwi = SeriesSpec(
        "ep2d_diff",
        len(B_VALUES),
        "*ep_b{b}",
        ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND", "MOSAIC"),
        scanning_sequence=("EP",),
        b_values=B_VALUES,
        directions=_DIRS[:6],
        mosaic=4,
        rows=64,
        cols=64,
        extra=BASELINE,
    )
    write_study(tmp / "dwi", series=[dwi], patient_id="DEMO002", accession="ACC2")
    write_study(tmp / "oth", series=[SeriesSpec("t1", 1)], patient_id="OTH0001", study_uid=FOREIGN)
    for folder in ("pure", "dwi", "oth"):
        r = storescu(research.dicom_port, tmp / folder, aec=research.aet)
        assert r.returncode == 0, r.stderr
    (tmp / "projects.yml").write_text(PROJECTS)
    config = write_config(
        tmp,
        tracker={"backend": "local", "projects_file": str(tmp / "projects.yml")},
        destinations={
            "research-pacs": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": research.dicom_port,
                "called_aetitle": research.aet,
                "calling_aetitle": "FIONA",
            },
            "outbox": {"type": "folder", "path": str(tmp / "outbox")},
        },
        exports={"max_attempts": 2},
        web={"host": "127.0.0.1", "port": 1, "session_minutes": 60},
    )
    cfg = load_config(config)
    settings = load_exports(cfg)
    jobs = {
        "pure": q.add_job(settings, q.ExportJob("DEMO", patientid="DEMO001", event="baseline")),
        "nifti": q.add_job(
            settings, q.ExportJob("DEMO", patientid="DEMO002", event="baseline", exportType="NIFTI")
        ),
        "missing": q.add_job(
            settings, q.ExportJob("DEMO", studyinstanceuid="1.2.3.999", exportType="DICOM")
        ),
        "foreign": q.add_job(
            settings, q.ExportJob("DEMO", studyinstanceuid=FOREIGN, exportType="DICOM")
        ),
    }
    pw = tmp / "pw.txt"
    pw.write_text(PASSWORD + "\n")
    r = run_bin(
        "fiona",
        "export",
        "add",
        "DEMO",
        "--participant",
        "DEMO001",
        "--type",
        "DICOM",
        "--destination",
        "outbox",
        "--password-file",
        str(pw),
        config=config,
    )
    assert r.returncode == 0, r.stderr
    jobs["encrypted"] = q.ExportJob("DEMO", id=r.stdout.split("queued ")[1].split()[0])
    assert (settings.secrets / jobs["encrypted"].id).stat().st_mode & 0o777 == 0o600
    run = run_bin("createZipFileCmd", config=config, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "3 done, 2 to retry" in run.stdout, run.stdout
    return {"cfg": cfg, "config": config, "settings": settings, "jobs": jobs, "orthanc": research}


def _state(site, name):  # type: ignore[no-untyped-def]
    return q.read_state(site["settings"], site["jobs"][name].id)


def test_pure_export_has_orthancs_instances(site) -> None:  # type: ignore[no-untyped-def]
    state = _state(site, "pure")
    assert state["status"] == q.DONE and state["files_done"] == state["files_total"]
    name = state["file"]
    assert name.startswith("DEMO_DEMO001_baseline_") and name.endswith("_ACC1_PURE.zip")
    orthanc = site["orthanc"]
    study = next(
        s
        for s in orthanc.get("/studies?expand")
        if s["PatientMainDicomTags"]["PatientID"] == "DEMO001"
    )
    expected = {
        orthanc.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"]
        for s in study["Series"]
        for i in orthanc.get(f"/series/{s}")["Instances"]
    }
    with zipfile.ZipFile(site["settings"].files / name) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = zf.namelist()
        dicoms = [n for n in names if n.endswith(".dcm")]
        assert "fiona.txt" in names
        import hashlib

        for series in manifest["series"]:
            for inst in series["instances"]:
                assert hashlib.sha256(zf.read(inst["file"])).hexdigest() == inst["sha256"]
    sops = {i["sop_uid"] for s in manifest["series"] for i in s["instances"]}
    assert sops == expected and len(dicoms) == len(expected) == manifest["count"] == 5
    folders = sorted({n.rsplit("/", 1)[0] for n in dicoms})
    assert folders == ["DEMO001/baseline/MR_1_t1_mprage_sag", "DEMO001/baseline/MR_2_t2_tse_tra"]


def test_nifti_diffusion_export(site, tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = _state(site, "nifti")
    assert state["status"] == q.DONE, state
    with zipfile.ZipFile(site["settings"].files / state["file"]) as zf:
        zf.extractall(tmp_path)
    dwi = tmp_path / "sub-DEMO002" / "ses-baseline" / "dwi"
    nii = next(dwi.glob("*_dwi.nii.gz"))
    bval = next(dwi.glob("*_dwi.bval")).read_text().split()
    bvec = [line.split() for line in next(dwi.glob("*_dwi.bvec")).read_text().splitlines()]
    sidecar = json.loads(next(dwi.glob("*_dwi.json")).read_text())
    volumes = nibabel.load(nii).shape[3]
    assert volumes == len(B_VALUES) == len(bval) and all(len(row) == volumes for row in bvec)
    assert sorted({float(b) for b in bval}) == [0, 1000, 2000]
    assert "EchoTime" in sidecar


def test_encrypted_zip_needs_its_password(site) -> None:  # type: ignore[no-untyped-def]
    job = site["jobs"]["encrypted"]
    state = _state(site, "encrypted")
    assert state["status"] == q.DONE and "file" not in state  # a folder destination
    zip_path = Path(site["cfg"].destinations["outbox"].destination().path) / state["files"][0]
    assert not (site["settings"].secrets / job.id).exists()  # the password is gone after the run
    for text in (site["settings"].queue, site["settings"].state / f"{job.id}.json"):
        assert PASSWORD not in text.read_text() if text.exists() else True
    logs = "".join(p.read_text() for p in site["cfg"].datadir.rglob("*.log"))
    assert PASSWORD not in logs
    with pyzipper.AESZipFile(zip_path) as zf:
        first = next(n for n in zf.namelist() if n.endswith(".dcm"))
        with pytest.raises(RuntimeError):
            zf.read(first)  # no password
        zf.setpassword(b"wrong password")
        with pytest.raises(RuntimeError):
            zf.read(first)
        zf.setpassword(PASSWORD.encode())
        assert zf.read(first)[128:132] == b"DICM"
    with zipfile.ZipFile(zip_path) as plain, pytest.raises((RuntimeError, NotImplementedError)):
        plain.read(first)


def test_missing_study_is_named_and_fails_after_its_attempts(site) -> None:  # type: ignore[no-untyped-def]
    state = _state(site, "missing")
    assert state["status"] == q.QUEUED and "1.2.3.999" in state["error"]
    run = run_bin("createZipFileCmd", config=site["config"], timeout=60)
    assert "0 done, 0 to retry, 2 failed" in run.stdout, run.stdout
    state = _state(site, "missing")
    assert state["status"] == q.FAILED and state["job"]["downloadAttempts"] == 2
    assert q.queued(site["settings"]) == []
    r = run_bin("fiona", "export", "status", site["jobs"]["missing"].id, config=site["config"])
    assert "failed" in r.stdout and "1.2.3.999" in r.stdout
    foreign = _state(site, "foreign")  # another project's study: refused, never retrieved
    assert foreign["status"] == q.FAILED and "is not project DEMO's" in foreign["error"]
    assert not any(site["settings"].files.glob(f"*{FOREIGN}*"))
    logs = "".join(p.read_text() for p in site["cfg"].datadir.rglob("*.log"))
    assert "export failed" in logs and "1.2.3.999" not in logs and "DEMO001" not in logs


def test_exports_page(site) -> None:  # type: ignore[no-untyped-def]
    from fionaweb import create_app

    cfg = site["cfg"]
    store = UserStore.for_site(cfg)
    store.add_user("alice", "alice-password-1")
    store.grant("alice", "export", "DEMO")
    store.add_user("olga", "olga-password-1")
    store.grant("olga", "export", "OTHER")
    app = create_app(cfg)
    alice, olga = app.test_client(), app.test_client()
    client_login(alice, "alice", "alice-password-1")
    client_login(olga, "olga", "olga-password-1")

    page = alice.get("/exports/?project=DEMO")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    pure_id = site["jobs"]["pure"].id
    assert pure_id in html and "<progress" in html
    r = alice.post(
        "/exports/request",
        data={
            "project": "DEMO",
            "participant": "DEMO001",
            "event": "baseline",
            "type": "DICOM",
            "destination": "download",
            "csrf_token": csrf_from(html),
        },
    )
    assert r.status_code == 302
    bad = alice.post(
        "/exports/request",
        data={
            "project": "DEMO",
            "participant": "OTH0001",
            "type": "PURE",
            "csrf_token": csrf_from(html),
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "is not a participant ID of DEMO" in bad
    rows = alice.get("/exports/jobs.json?project=DEMO").get_json()
    assert len(rows) == 6  # the five of the fixture and the new one: nothing for OTH0001
    fixture_ids = {j.id for j in site["jobs"].values()}
    new = next(j for j in rows if j["id"] not in fixture_ids)
    assert new["status"] == "queued" and new["percent"] == 0
    queued_page = alice.get("/exports/?project=DEMO").get_data(as_text=True)
    assert 'http-equiv="refresh"' in queued_page  # the progress refreshes while a job waits
    nothing = alice.post(  # an event the participant has no study of: a clear error
        "/exports/request",
        data={
            "project": "DEMO",
            "participant": "DEMO001",
            "event": "followup",
            "type": "PURE",
            "csrf_token": csrf_from(html),
        },
    )
    assert nothing.status_code == 302
    run = run_bin("createZipFileCmd", config=site["config"], timeout=120)
    assert "1 done, 1 to retry" in run.stdout, run.stdout
    rows = alice.get("/exports/jobs.json?project=DEMO").get_json()
    done = next(j for j in rows if j["id"] == new["id"])
    assert done["status"] == "done" and done["percent"] == 100 and done["files_total"] > 5
    later = next(j for j in rows if j["id"] not in fixture_ids | {new["id"]})
    assert (
        later["status"] == "queued"
        and "no study of the participant for event 'followup'" in later["error"]
    )
    got = alice.get(f"/exports/job/{new['id']}/download")
    assert got.status_code == 200 and got.data[:2] == b"PK"
    assert "DEMO_DEMO001_baseline_" in got.headers["Content-Disposition"]

    # another project's user: no DEMO jobs listed, no download, no queue of DEMO
    assert olga.get("/exports/?project=DEMO").status_code == 403
    other = olga.get("/exports/?project=OTHER").get_data(as_text=True)
    assert pure_id not in other and new["id"] not in other
    assert olga.get(f"/exports/job/{new['id']}/download").status_code == 403
    assert olga.get("/exports/jobs.json?project=DEMO").status_code == 403
    assert olga.get("/exports/job/nonsense/download").status_code == 404
    audit = "".join(p.read_text() for p in cfg.datadir.rglob("audit*") if p.is_file())
    assert "export downloaded" in audit
