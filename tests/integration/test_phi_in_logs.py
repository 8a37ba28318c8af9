"""No value from a DICOM file in any log line (issue 11), end to end.

Broken files carrying planted patient data (tests/support/phi_files.py: wrong VRs, odd and
overlong lengths, unknown character sets, invalid text, non-conformant UIDs, a patient ID too
long for a folder name) go through dcmtk storescu -> storectl -> processSingleFile, plus two a
sender would refuse, planted in the archive. Then the cron jobs run as cron runs them, with a
coupling list that sends the studies on. Every file under DATADIR/logs, every job's recorded
outcome, and everything the programs printed on stderr are searched for the planted values.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fionagw.config import load_config
from support import phi_files
from support.site import free_port, raw_links, run_bin, storescu, wait_for, write_config

pytestmark = pytest.mark.slow

PROJECTS_YML = (
    "projects:\n  ALPHA:\n    participant_id: '^ALPHA[0-9]{3}$'\n    events: [baseline]\n"
)
FILED = {  # the variants whose bad element still lets the image be filed
    "plain",
    "pid_us_odd",
    "modality_us_odd",
    "name_as_ds",
    "accession_as_da",
    "description_as_at",
    "institution_as_fl",
    "unknown_charset",
    "invalid_utf8",
    "bad_uids",
}
REFUSED = {"bad_uids"}  # non-conformant UIDs: the receiver refuses them (0xA900)
CRON_JOBS = (
    "detectStudyArrival",
    "populateIncoming",
    "createTransferRequest",
    "resendProject",
    "anonymizeAndSend",
    "removeOldEntries",
    "heartbeat",
    "clearOldFiles",
    "clearStaleLinks",
)


def test_no_planted_value_reaches_a_log(tmp_path: Path) -> None:
    projects = tmp_path / "projects.yml"
    projects.write_text(PROJECTS_YML)
    config = write_config(
        tmp_path,
        tracker={"backend": "local", "projects_file": str(projects)},
        arrival={"quiet_seconds": 1, "settle_seconds": 1},
        web={"enabled": False, "port": free_port()},
        metrics={"enabled": False, "port": free_port()},
    )
    cfg = load_config(config)
    printed: list[tuple[str, str]] = []  # (what ran, what it printed)

    def run(program: str, *args: str) -> str:
        r = run_bin(program, *args, config=config, timeout=180)
        printed.append((f"{program} {' '.join(args)}", r.stdout + r.stderr))
        assert r.returncode == 0, f"{program} {args}: {r.stderr}"
        return r.stdout

    csv = tmp_path / "coupling.csv"
    csv.write_text(
        "AccessionNumber,ProjectName,subjectid,eventname\n"
        f"{phi_files.PLANTED['AccessionNumber']},ALPHA,ALPHA007,baseline\n"
    )
    run("fiona", "coupling-list", "import", str(csv))

    sendable = phi_files.write(tmp_path / "send", phi_files.broken_files(tmp_path / "gen"))
    unsendable = phi_files.write(tmp_path / "keep", phi_files.unsendable_files(tmp_path / "gen"))
    run("processSingleFile", "start")
    run("storectl", "start")
    try:
        for path in sendable:
            r = storescu(cfg.dicom_port, path, aet="MODALITY1")
            printed.append((f"storescu {path.name}", r.stdout + r.stderr))
            if path.stem in REFUSED:  # the receiver answers a failure status: nothing stored
                assert r.returncode != 0, f"{path.name} was accepted"
                unsendable.append(path)  # still planted below: older archives may hold it
            else:
                assert r.returncode == 0, r.stderr
        # bytes a sender refuses to send can still be in the archive (a disk copied in)
        folder = cfg.paths.archive_study_dir("1.2.826.0.1.3680043.2.1143.4711")
        folder.mkdir(parents=True)
        for path in unsendable:
            (folder / f"MR.{path.stem}").write_bytes(path.read_bytes())
            run("processSingleFile", "send", str(folder / f"MR.{path.stem}"))
        broken_count = len({p.stem for p in sendable + unsendable}) - len(FILED)
        wait_for(
            lambda: (
                len(raw_links(cfg.datadir)) == len(FILED)
                and len(list(cfg.paths.broken.rglob("*.reason"))) == broken_count
            ),
            what="every file filed or moved aside",
        )
        # a restart: the start-up reconcile must meet none of them again
        run("processSingleFile", "restart")
        time.sleep(1.5)  # quiet and settle periods
        for job in CRON_JOBS:
            run(job, "-v") if job == "detectStudyArrival" else run(job)
        time.sleep(1.5)
        for job in CRON_JOBS:
            run(job)
        wait_for(lambda: list(cfg.paths.transfers_done.glob("*")), what="a transfer done")
        run("fiona", "status")
        logs_text = run("fiona", "logs")
        for path in dict.fromkeys(
            sendable + unsendable
        ):  # trying rules on a file prints its series JSON
            r = run_bin("processSingleFile", "test", str(path), config=config)  # (its data) on
            printed.append((f"processSingleFile test {path.name}", r.stderr))  # stdout only
    finally:
        run_bin("storectl", "stop", config=config)
        run_bin("processSingleFile", "stop", config=config)

    # the pipeline did its work: studies on the incoming list, a transfer done
    assert cfg.paths.incoming_list.read_text().count("\n") >= 1
    assert logs_text.strip()

    leaks = []
    for path in sorted(cfg.paths.logs.rglob("*")):
        if path.is_file():
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if phi_files.MARKER in line:
                    leaks.append(f"{path.name}:{number}: {line[:300]}")
    for path in sorted(cfg.paths.pids.glob("*.json")):  # each job's recorded outcome
        if phi_files.MARKER in path.read_text(errors="replace"):
            leaks.append(f"{path.name}: {path.read_text()[:300]}")
    for what, text in printed:
        if phi_files.MARKER in text:
            leaks.append(f"{what} printed: {text[:300]}")
    if phi_files.MARKER in logs_text:
        leaks.append("fiona logs printed a planted value")
    assert not leaks, "\n".join(leaks)

    # the log is not empty of what happened: the broken files are named by path and reason
    entries = [
        json.loads(line) for line in cfg.paths.logfile("processSingleFile").read_text().splitlines()
    ]
    moved = [e for e in entries if "moved aside" in e["message"]]
    assert len(moved) == broken_count and all(e.get("reason") for e in moved)
    assert not any("exception" in e for e in entries)
