"""QC gates end to end: dcmtk storescu sends a JPEG-baseline study -> the receiver, the
classifier, detectStudyArrival (QC runs) -> coupling list -> populateIncoming ->
createTransferRequest -> anonymizeAndSend holds it (the project gates on lossless; Orthanc
receives nothing) -> a user without the project's admin role is refused by `fiona qc bypass`
-> the project admin bypasses -> the next anonymizeAndSend delivers it to Orthanc; the audit
log and the report show the bypass."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from fionagw.transfers.failures import read_record
from support.pacs_gateway import job, pacs_gateway
from support.site import BIN, storescu, wait_for
from support.synth import standard_mr_series, write_study

pytestmark = pytest.mark.slow

ACCESSION = "ACC-QC-0001"
PROJECTS = """
projects:
  LOSSLESS:
    participant_id: '^L[0-9]{3}$'
    destination: research-pacs
    deid: {mode: keyed}
    qc: {gates: [lossless, demographics]}
"""


@pytest.fixture
def gateway(tmp_path: Path, orthanc):  # type: ignore[no-untyped-def]
    yield from pacs_gateway(tmp_path, orthanc, PROJECTS)


def jpeg_baseline_study(root: Path) -> list[Path]:
    """Two MR series of 3 images, each file made JPEG baseline (lossy) by dcmtk's dcmcjpeg."""
    plain = write_study(
        root / "plain",
        vendor="SIEMENS",
        series=standard_mr_series("SIEMENS", 3)[1:3],
        accession=ACCESSION,
        rows=64,
        cols=64,
    )
    out = []
    for f in plain:
        target = root / "jpeg" / f.relative_to(root / "plain")
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dcmcjpeg", "+eb", str(f), str(target)], check=True, capture_output=True)
        out.append(target)
    return out


def fiona(cfg, *args: str, stdin: str = "") -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [str(BIN / "fiona"), "--config", str(cfg.config_file), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def user(cfg, *args: str, stdin: str = "") -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return fiona(cfg, "user", *args, stdin=stdin)


def qc(cfg, *args: str, stdin: str = "") -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return fiona(cfg, "qc", *args, stdin=stdin)


def test_lossy_study_held_until_a_project_admin_bypasses(gateway, orthanc, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = gateway
    files = jpeg_baseline_study(tmp_path)
    r = storescu(cfg.dicom_port, *files, aet="SCANNER", extra=("-xy",))
    assert r.returncode == 0, r.stderr
    wait_for(
        lambda: sum(1 for p in cfg.paths.raw.glob("*/*/*") if p.is_symlink()) >= len(files),
        what="every image classified",
    )
    time.sleep(2.5)  # the classifier's write-behind flush, then the quiet period
    job(cfg, "detectStudyArrival")
    [study] = [p.name for p in cfg.paths.raw.iterdir() if p.is_dir()]
    stored = json.loads(cfg.paths.qc_result(study).read_text())  # QC ran when it became stable
    checks = {c["name"]: c for c in stored["evaluations"][""]["checks"]}
    assert checks["lossless"]["status"] == "fail"
    assert "JPEG Baseline" in checks["lossless"]["details"][0]

    csv = tmp_path / "coupling.csv"
    csv.write_text(f"AccessionNumber,ProjectName,subjectid,eventname\n{ACCESSION},LOSSLESS,L001,\n")
    job(cfg, "fiona", "coupling-list", "import", str(csv))
    old = time.time() - 120  # populateIncoming waits for series JSON untouched for 60 s
    for j in cfg.paths.raw.glob("*/*.json"):
        os.utime(j, (old, old))
    job(cfg, "populateIncoming")
    job(cfg, "createTransferRequest")
    job(cfg, "anonymizeAndSend")

    assert orthanc.instances() == []  # held: nothing left the gateway
    [held] = [
        p.name[: -len("_fail_messages.log")]
        for p in cfg.paths.transfers_fail.glob("*_messages.log")
    ]
    record = read_record(cfg.paths, held)
    assert record is not None and record.reason == "qc"
    assert record.error.startswith("held by QC: lossless (lossy or possibly lossy images")
    assert "demographics" not in record.error  # the synthetic header has age and sex
    job(cfg, "createTransferRequest")  # held: not queued again while nothing changed
    assert not list(cfg.paths.transfer_requests.glob("*.json"))

    for name, role in (("ada", ("assign", "LOSSLESS")), ("bob", ("admin", "LOSSLESS"))):
        assert (
            user(cfg, "add", name, "--password-stdin", stdin=f"{name}-password-1\n").returncode == 0
        )
        assert user(cfg, "grant", name, *role).returncode == 0

    r = qc(cfg, "bypass", study, "--project", "LOSSLESS", "--user", "ada", "--reason", "ok",
           "--password-stdin", stdin="ada-password-1\n")  # fmt: skip
    assert r.returncode == 1
    assert "do not have the admin role on project LOSSLESS" in r.stderr
    r = qc(cfg, "bypass", study, "--project", "LOSSLESS", "--user", "bob", "--reason", "x",
           "--password-stdin", stdin="wrong-password\n")  # fmt: skip
    assert r.returncode == 1 and "wrong password" in r.stderr
    job(cfg, "anonymizeAndSend")
    assert orthanc.instances() == []

    r = qc(cfg, "bypass", study, "--project", "LOSSLESS", "--user", "bob", "--check", "lossless",
           "--reason", "archive copy; the original is lost", "--password-stdin",
           stdin="bob-password-1\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Bypassed lossless for LOSSLESS; 1 held request(s) queued again" in r.stdout
    job(cfg, "anonymizeAndSend")
    assert len(orthanc.instances()) == len(files)
    assert orthanc.study_uids() and study not in orthanc.study_uids()  # pseudonymized

    audit = [json.loads(line) for line in cfg.paths.logfile("audit").read_text().splitlines()]
    [entry] = [a for a in audit if a["action"] == "qc-bypass"]
    assert entry["user"] == "bob" and entry["checks"] == ["lossless"]
    assert entry["reason"] == "archive copy; the original is lost"
    assert entry["study_uid"] == study and entry["released"] == [held]

    r = qc(cfg, "show", study, "--format", "json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["bypasses"][0]["user"] == "bob"
    [delivery] = report["deliveries"]
    assert delivery["state"] == "sent" and delivery["participant"] == "L001"
    [lossless] = [e for e in report["qc"]["evaluations"] if e["project"] == "LOSSLESS"]
    assert lossless["state"] == "bypassed"
    text = qc(cfg, "show", study, "--format", "txt").stdout
    assert "Bypasses" in text and "archive copy; the original is lost" in text
    assert "Synthetic^Patient" not in r.stdout + text and "SYN0001" not in r.stdout + text
