"""Query/retrieve against Orthanc as the clinical PACS (our receiver registered in it as the
modality FIONA, so its C-MOVE reaches us): `fiona pacs find`, the getAllPatients inventory,
moveFromScanner completing a half-pushed study (only the missing series moved; a PACS that is
down fails the run and the next run completes it), and resend from PACS of a study cleared by
clearOldFiles (the research PACS, a second Orthanc, gets the same pseudonym and UIDs again).
One clinical and one research Orthanc and one running gateway for the whole module."""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import date
from pathlib import Path

import pytest
import requests

from fionagw.pacs.resend import queue_resend
from support.pacs_gateway import job, pacs_gateway
from support.site import free_port, run_bin, storescu, wait_for, write_config
from support.synth import standard_mr_study

pytestmark = pytest.mark.slow

TODAY = date.today().strftime("%Y%m%d")
PROJECTS = """
projects:
  ALPHA:
    participant_id: '^ALPHA[0-9]{3}$'
    events: [baseline]
    destination: research-pacs
    deid: {mode: keyed}
"""


@pytest.fixture(scope="module")
def peers(tmp_path_factory, orthanc_factory, tls_files):  # type: ignore[no-untyped-def]
    port = free_port()
    clinical = orthanc_factory("CLINICAL", DicomModalities={"fiona": ["FIONA", "127.0.0.1", port]})
    research = orthanc_factory("RESEARCH")
    return port, clinical, research


@pytest.fixture(scope="module")
def tls_pacs(orthanc_factory, tls_files):  # type: ignore[no-untyped-def]
    """A clinical PACS on DICOM TLS that requires a client certificate."""
    return orthanc_factory(
        "TLSPACS",
        DicomTlsEnabled=True,
        DicomTlsCertificate=str(tls_files["server_cert"]),
        DicomTlsPrivateKey=str(tls_files["server_key"]),
        DicomTlsTrustedCertificates=str(tls_files["ca"]),
        DicomTlsRemoteCertificateRequired=True,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory, peers, tls_pacs, tls_files):  # type: ignore[no-untyped-def]
    port, clinical, research = peers
    tmp = tmp_path_factory.mktemp("pacs-site")

    def make_config(directory: Path, **kw: object) -> Path:
        return write_config(
            directory,
            DICOMPORT=port,
            pacs={
                "move_destination": "FIONA",
                "max_attempts": 3,
                "wait_seconds": 60,
                "sources": {
                    "clinical": {
                        "host": "127.0.0.1",
                        "port": clinical.dicom_port,
                        "called_aetitle": clinical.aet,
                        "timeout": 10,
                    },
                    "clinical-get": {
                        "host": "127.0.0.1",
                        "port": clinical.dicom_port,
                        "called_aetitle": clinical.aet,
                        "retrieve": "get",
                    },
                    "clinical-tls": {
                        "host": "127.0.0.1",
                        "port": tls_pacs.dicom_port,
                        "called_aetitle": tls_pacs.aet,
                        "tls": {
                            "cert": str(tls_files["client_cert"]),
                            "key": str(tls_files["client_key"]),
                            "ca": str(tls_files["ca"]),
                        },
                    },
                },
            },
            # clearOldFiles: DATADIR has a tiny quota, so every finished study goes
            retention={"capacity_bytes": 1000, "min_age_hours": 0},
            **kw,
        )

    gen = pacs_gateway(tmp, research, PROJECTS, make_config=make_config)
    cfg = next(gen)
    yield cfg
    next(gen, None)


def upload(peer, files: list[Path]) -> None:  # type: ignore[no-untyped-def]
    for f in files:
        r = requests.post(peer.url + "/instances", data=f.read_bytes(), timeout=30)
        r.raise_for_status()


def study(tmp: Path, n: int, **patient: str) -> list[Path]:
    return standard_mr_study(tmp, "SIEMENS", n_per_series=n, study_date=TODAY, **patient)


def per_series(files: list[Path]) -> dict[str, int]:
    """Instances per series folder (S001, ...) of a synthetic study."""
    out: dict[str, int] = {}
    for f in files:
        out[f.parent.name] = out.get(f.parent.name, 0) + 1
    return out


def fiona(cfg, *args: str):  # type: ignore[no-untyped-def]
    return run_bin("fiona", *args, config=cfg.config_file, timeout=120)


def pacs_logs(cfg) -> str:  # type: ignore[no-untyped-def]
    """The query/retrieve programs' log lines (the request queue's own line, which names the
    request file, is routing/requests.py's and not ours)."""
    return "".join(
        line
        for p in cfg.paths.logs.glob("*.log")
        if p.stem in ("pacs", "getAllPatients", "moveFromScanner")
        for line in p.read_text().splitlines(keepends=True)
        if "transfer request queued" not in line
    )


def test_find_and_inventory(site, peers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, (_, clinical, _) = site, peers
    files = study(tmp_path / "a", 2, patient_id="INV-PID-1", accession="INV-ACC-1")
    upload(clinical, files)
    r = fiona(cfg, "pacs", "find", "--accession", "INV-ACC-1", "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["PatientID"] for row in rows] == ["INV-PID-1"]
    uid = rows[0]["StudyInstanceUID"]
    r = fiona(cfg, "pacs", "find", "--level", "PATIENT", "--patient-id", "INV-PID-1", "--json")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["PatientID"] for line in r.stdout.splitlines()] == ["INV-PID-1"]
    r = fiona(cfg, "pacs", "find", "--level", "SERIES", "--study", uid, "--json")
    assert r.returncode == 0, r.stderr
    series = [json.loads(line) for line in r.stdout.splitlines()]
    expected = sorted(per_series(files).values())
    assert sorted(int(s["NumberOfSeriesRelatedInstances"]) for s in series) == expected

    r = run_bin("getAllPatients", "0", config=cfg.config_file, timeout=120)
    assert r.returncode == 0, r.stderr
    inv_file = cfg.paths.inventory / "clinical.json"
    assert stat.S_IMODE(inv_file.stat().st_mode) == 0o640
    entry = json.loads(inv_file.read_text())["studies"][uid]
    assert entry["instances"] == len(files) and entry["here"] == 0
    assert sorted(s["instances"] for s in entry["series"].values()) == expected
    assert entry["AccessionNumber"] == "INV-ACC-1"

    # C-GET (a PACS that cannot reach our receiver): filed by the client, then classified
    r = fiona(cfg, "pacs", "--source", "clinical-get", "move", uid)
    assert r.returncode == 0, r.stderr
    assert f"{len(files)} retrieved, 0 failed" in r.stdout
    wait_for(lambda: _links(cfg, uid) == len(files), what="the C-GET instances filed")
    logs = pacs_logs(cfg)
    assert "C-FIND" in logs and "C-GET" in logs
    for phi in ("INV-PID-1", "INV-ACC-1", uid):
        assert phi not in logs


def test_find_over_tls_and_the_sources(site, tls_pacs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = study(tmp_path / "t", 1, patient_id="TLS-PID", accession="TLS-ACC")
    upload(tls_pacs, files[:1])
    r = fiona(site, "pacs", "--source", "clinical-tls", "find", "--accession", "TLS-ACC", "--json")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["PatientID"] for line in r.stdout.splitlines()] == ["TLS-PID"]
    r = fiona(site, "pacs", "sources")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("clinical (CLINICAL@127.0.0.1:") and lines[0].endswith(
        "retrieve by C-MOVE (default)"
    )
    assert [line.split(" ")[0] for line in lines] == ["clinical", "clinical-get", "clinical-tls"]


def test_move_from_scanner_moves_only_missing_series(site, peers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, (_, clinical, _) = site, peers
    files = study(tmp_path / "b", 3, patient_id="MOV-PID-2", accession="MOV-ACC-2")
    upload(clinical, files)
    # the scanner pushed 3 of the 7 series and the first image of the 4th before the link
    # went down: the 4th is retrieved by its missing instances only, the others whole
    pushed = [tmp_path / "b" / f"S00{i}" for i in (1, 2, 3)]
    pushed.append(sorted((tmp_path / "b" / "S004").glob("*.dcm"))[0])
    assert storescu(cfg.dicom_port, *pushed, aet="SCANNER").returncode == 0
    r = fiona(cfg, "pacs", "find", "--accession", "MOV-ACC-2", "--json")
    uid = json.loads(r.stdout.splitlines()[0])["StudyInstanceUID"]
    counts = per_series(files)
    half = sum(counts[f"S00{i}"] for i in (1, 2, 3)) + 1
    wait_for(lambda: _links(cfg, uid) == half, what="the pushed half filed")
    # the inventory finds it incomplete here and lists it for moveFromScanner
    r = run_bin("getAllPatients", "--complete", "0", config=cfg.config_file, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "1 incomplete here" in r.stdout
    assert json.loads((cfg.paths.active_scans / uid).read_text())["by"] == "getAllPatients"

    # the PACS is down: the run fails in one line, the study stays active
    clinical.stop()
    try:
        r = run_bin("moveFromScanner", config=cfg.config_file, timeout=120)
    finally:
        clinical.start()
    assert r.returncode == 1
    # (the launcher's own "setting up" line appears when another checkout changed the venv)
    lines = [x for x in r.stderr.splitlines() if not x.startswith("fionagw: setting up")]
    assert len(lines) == 1 and "connection refused" in lines[0], r.stderr
    assert (cfg.paths.active_scans / uid).exists()

    started = time.monotonic()
    r = run_bin("moveFromScanner", config=cfg.config_file, timeout=120)
    assert r.returncode == 0, r.stderr
    # only what was missing was C-MOVE sub-operations
    missing = len(files) - half
    assert f"1 finished, 0 failed, 0 waiting; {missing} instances retrieved" in r.stdout
    assert _links(cfg, uid) == len(files)
    assert not (cfg.paths.active_scans / uid).exists()
    done = json.loads((cfg.paths.finished_scans / uid).read_text())
    assert done["instances"] == len(files) and done["series"] == 7 and done["attempts"] == 1
    print(f"moveFromScanner of {missing} missing instances: {time.monotonic() - started:.1f} s")
    archived = list(cfg.paths.archive_study_dir(uid).iterdir())
    assert len(archived) == len(files)
    logs = pacs_logs(cfg)
    assert f'"completed": {missing}' in logs and '"partial_series": 1' in logs
    for phi in ("MOV-PID-2", "MOV-ACC-2", uid):
        assert phi not in logs


def test_unknown_study_goes_to_failed_scans(site) -> None:  # type: ignore[no-untyped-def]
    cfg = site
    uid = "1.2.826.0.1.3680043.99.1"
    cfg.paths.active_scans.mkdir(parents=True, exist_ok=True)
    (cfg.paths.active_scans / uid).write_text(json.dumps({"attempts": 2}))
    r = run_bin("moveFromScanner", config=cfg.config_file, timeout=120)
    assert r.returncode == 0, r.stderr
    failed = json.loads((cfg.paths.failed_scans / uid).read_text())
    assert "does not know the study" in failed["reason"] and failed["attempts"] == 3


def _links(cfg, uid: str) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for p in cfg.paths.raw_study_dir(uid).glob("*/*") if p.is_symlink())


def test_resend_from_pacs_after_clear_old_files(site, peers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, (_, clinical, research) = site, peers
    files = study(tmp_path / "c", 2, patient_id="RES-PID-3", accession="RES-ACC-3")
    upload(clinical, files)
    assert storescu(cfg.dicom_port, tmp_path / "c", aet="SCANNER").returncode == 0
    r = fiona(cfg, "pacs", "find", "--accession", "RES-ACC-3", "--json")
    uid = json.loads(r.stdout.splitlines()[0])["StudyInstanceUID"]
    wait_for(lambda: _links(cfg, uid) == len(files), what="the study filed")
    time.sleep(2.5)  # the classifier's write-behind flush, then the quiet period
    job(cfg, "detectStudyArrival")
    csv = tmp_path / "coupling.csv"
    csv.write_text(
        "AccessionNumber,ProjectName,subjectid,eventname\nRES-ACC-3,ALPHA,ALPHA003,baseline\n"
    )
    job(cfg, "fiona", "coupling-list", "import", str(csv))
    old = time.time() - 120
    for j in cfg.paths.raw_study_dir(uid).glob("*.json"):
        os.utime(j, (old, old))
    job(cfg, "populateIncoming")
    job(cfg, "createTransferRequest")
    job(cfg, "anonymizeAndSend")
    sent = wait_for(
        lambda: research.sop_uids() if len(research.instances()) == len(files) else None,
        what="the first send",
    )
    pseudonyms = {
        research.get(f"/instances/{i}/simplified-tags")["PatientID"] for i in sent.values()
    }
    assert pseudonyms == {"ALPHA003"}

    job(cfg, "clearOldFiles")
    assert not cfg.paths.raw_study_dir(uid).exists()
    assert not cfg.paths.archive_study_dir(uid).exists()

    started = time.monotonic()
    r = fiona(cfg, "pacs", "resend", "RES-ACC-3")
    assert r.returncode == 0, r.stderr
    assert f"{len(files)} instances retrieved; 1 earlier assignment(s) queued again" in r.stdout
    print(f"resend retrieve: {time.monotonic() - started:.1f} s")
    job(cfg, "anonymizeAndSend")
    assert len(research.instances()) == len(files)  # the same UIDs: replaced, not doubled
    assert research.sop_uids().keys() == sent.keys()
    again = {
        research.get(f"/instances/{i}/simplified-tags")["PatientID"] for i in research.instances()
    }
    assert again == {"ALPHA003"}

    # the Assign page's Resend button: cleared again, listed for moveFromScanner, sent again
    job(cfg, "clearOldFiles")
    assert not cfg.paths.raw_study_dir(uid).exists()
    assert queue_resend(cfg, uid, "datamanager")
    r = run_bin("moveFromScanner", config=cfg.config_file, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"1 finished, 0 failed, 0 waiting; {len(files)} instances retrieved" in r.stdout
    assert json.loads((cfg.paths.finished_scans / uid).read_text())["requeued"] == 1
    job(cfg, "anonymizeAndSend")
    assert len(research.instances()) == len(files)
    assert research.sop_uids().keys() == sent.keys()
    for phi in ("RES-PID-3", "RES-ACC-3", uid):
        assert phi not in pacs_logs(cfg)


def test_resend_of_unknown_accession_is_one_line(site) -> None:  # type: ignore[no-untyped-def]
    r = fiona(site, "pacs", "resend", "NO-SUCH-ACC")
    assert r.returncode == 1
    assert r.stderr.strip() == "fiona pacs: the PACS (clinical) has no such accession number"
