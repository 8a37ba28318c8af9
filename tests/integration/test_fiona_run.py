"""`fiona run`: one foreground command runs the whole gateway, and SIGTERM leaves nothing behind.

The end-to-end test: dcmtk storescu sends a study whose accession number is on the coupling
list; with no other command, the crontab's jobs (run by `fiona run` on their own schedule)
record it, request the transfer, de-identify it and deliver it to the default folder
destination DATADIR/outbox/<project>/<participant>/<study>/. It takes a few real minutes:
populateIncoming waits 60 s for a study to settle, and the jobs run once a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from pydicom import dcmread

from fionagw.config import load_config
from fionagw.ops.jobstate import last_run
from fionagw.web.users import FIRST_ADMIN_HINT
from support.site import BIN, echoscu, free_port, run_bin, storescu, wait_for, write_config
from support.synth import standard_mr_study

pytestmark = pytest.mark.slow

PROJECTS_YML = (
    "projects:\n  ALPHA:\n    participant_id: '^ALPHA[0-9]{3}$'\n    events: [baseline]\n"
)


def processes_mentioning(text: str) -> list[str]:
    """The process list: every process whose command line contains ``text``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmd and state != "Z":
            found.append(f"{d.name}: {cmd.strip()}")
    return found


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, stack = set(), [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            if c not in out:
                out.add(c)
                stack.append(c)
    return out


class HeartbeatSink:
    """A real HTTP endpoint for the heartbeat POST."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                outer.posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hb"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FionaRun:
    def __init__(self, config: Path, log_dir: Path) -> None:
        self.out = open(log_dir / "fiona-run.out", "w+")  # noqa: SIM115 - closed in stop()
        self.err = open(log_dir / "fiona-run.err", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN / "fiona"), "--config", str(config), "run"],
            stdout=self.out,
            stderr=self.err,
            stdin=subprocess.DEVNULL,
        )

    def output(self) -> str:
        self.out.flush()
        self.err.flush()
        return Path(self.out.name).read_text() + Path(self.err.name).read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.out.close()
            self.err.close()


@pytest.fixture
def sink():  # type: ignore[no-untyped-def]
    s = HeartbeatSink()
    yield s
    s.close()


def site(tmp_path: Path, **overrides: Any) -> Path:
    projects = tmp_path / "projects.yml"
    projects.write_text(PROJECTS_YML)
    settings: dict[str, Any] = {
        "tracker": {"backend": "local", "projects_file": str(projects)},
        "arrival": {"quiet_seconds": 2, "settle_seconds": 2},
        "web": {"port": free_port()},
        "metrics": {"port": free_port()},
    }
    settings.update(overrides)
    return write_config(tmp_path, **settings)


def test_study_reaches_the_outbox_with_no_other_command(
    tmp_path: Path, sink: HeartbeatSink
) -> None:
    # the web server has its own test below: this one is about the DICOM path and the jobs
    config = site(
        tmp_path,
        heartbeat={"post_url": sink.url, "post_interval_seconds": 1},
        web={"enabled": False},
    )
    cfg = load_config(config)
    csv = tmp_path / "coupling.csv"
    csv.write_text(
        "AccessionNumber,ProjectName,subjectid,eventname\nACC-RUN-1,ALPHA,ALPHA007,baseline\n"
    )
    r = run_bin("fiona", "coupling-list", "import", str(csv), config=config)
    assert r.returncode == 0, r.stderr
    files = standard_mr_study(
        tmp_path / "study",
        vendor="SIEMENS",
        n_per_series=3,
        seed=5,
        patient_id="PAT-RUN-1",
        patient_name="Runner^Rita",
        accession="ACC-RUN-1",
    )
    study_uid = dcmread(files[0], stop_before_pixels=True).StudyInstanceUID

    run = FionaRun(config, tmp_path)
    try:
        wait_for(
            lambda: "stop with Ctrl-C" in run.output() or run.proc.poll() is not None,
            timeout=120,
            what="fiona run's banner",
        )
        banner = run.output()
        assert run.proc.poll() is None, banner
        # it says where everything listens
        assert f"FIONA on 127.0.0.1:{cfg.dicom_port}" in banner
        assert f"http://127.0.0.1:{cfg.metrics.port}/metrics" in banner
        assert "lines of" in banner and "fiona.crontab" in banner
        wait_for(lambda: echoscu(cfg.dicom_port).returncode == 0, timeout=60, what="the receiver")

        assert storescu(cfg.dicom_port, tmp_path / "study", aet="PACS").returncode == 0
        outbox = cfg.datadir / "outbox" / "ALPHA" / "ALPHA007"

        def delivered() -> list[Path]:
            sent = (
                [p for p in outbox.rglob("*") if p.is_file() and p.suffix == ".dcm"]
                if outbox.exists()
                else []
            )
            return sent if len(sent) == len(files) else []

        sent = wait_for(delivered, timeout=420, what="the de-identified study in DATADIR/outbox")

        # de-identified for ALPHA / ALPHA007, nothing of the patient left
        ds = dcmread(sent[0])
        assert str(ds.PatientName) == "ALPHA007" and ds.PatientID == "ALPHA007"
        assert ds.PatientIdentityRemoved == "YES" and ds.StudyInstanceUID != study_uid
        for p in sent:
            data = p.read_bytes()
            assert b"PAT-RUN-1" not in data and b"Runner" not in data and b"ACC-RUN-1" not in data

        # every step was a job of the crontab, run by fiona run (anonymizeAndSend records its run
        # when it ends, a moment after the files reached the outbox)
        jobs = (
            "detectStudyArrival",
            "populateIncoming",
            "createTransferRequest",
            "anonymizeAndSend",
        )
        wait_for(
            lambda: all(last_run(cfg, job) is not None for job in jobs),
            timeout=120,
            what="every job's run recorded",
        )
        for job in jobs:
            jr = last_run(cfg, job)
            assert jr is not None and jr.ok, (job, jr)
        st = run_bin("fiona", "status", config=config)
        assert st.returncode == 0, st.stdout + st.stderr
        for line in ("fiona run", "metrics", "processSingleFile", "storectl"):
            assert any(
                ln.strip().startswith(line) and "running" in ln for ln in st.stdout.splitlines()
            ), st.stdout
        metrics = requests.get(f"http://127.0.0.1:{cfg.metrics.port}/metrics", timeout=30).text
        assert f"fionagw_images_received_total {len(files)}" in metrics
        assert 'fionagw_transfer_requests{state="done"} 1' in metrics
        assert sink.posts and sink.posts[-1]["version"] and "system" in sink.posts[-1]

        tree = descendants(run.proc.pid)
        assert len(tree) >= 2, "the daemons should be children of fiona run"
    finally:
        rc = run.stop()
    assert rc == 0, run.output()
    time.sleep(0.5)
    assert processes_mentioning(str(config)) == [], "processes left behind after SIGTERM"
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in tree)
    assert (
        not cfg.paths.pidfile("storescpd").exists()
        and not cfg.paths.pidfile("processSingleFile").exists()
    )
    assert not (cfg.paths.pids / "fiona-run.json").exists()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_web_server_is_supervised(tmp_path: Path) -> None:
    config = site(tmp_path, metrics={"enabled": False})
    cfg = load_config(config)
    url = f"http://127.0.0.1:{cfg.web.port}/"
    run = FionaRun(config, tmp_path)
    try:
        wait_for(lambda: "stop with Ctrl-C" in run.output(), timeout=120, what="the banner")
        assert f"web           {url}" in run.output()
        # a first start: no web account yet, and the banner says how to make the first admin
        assert FIRST_ADMIN_HINT in run.output()

        def answers() -> int | None:
            try:
                return requests.get(url, timeout=5, allow_redirects=False).status_code
            except requests.ConnectionError:
                return None

        assert wait_for(answers, timeout=60, what="the web server") < 500
        st = run_bin("fiona", "status", config=config)
        web = [ln for ln in st.stdout.splitlines() if ln.strip().startswith("web ")]
        assert st.returncode == 0 and web and "running" in web[0] and url in web[0], (
            st.stdout + st.stderr
        )
        pid = int(web[0].split("pid")[1].split()[0])
        os.kill(pid, signal.SIGKILL)  # a crash: it comes back
        wait_for(lambda: answers() is None, timeout=30, what="the web server gone")
        assert wait_for(answers, timeout=60, what="the web server restarted") < 500
    finally:
        rc = run.stop()
    assert rc == 0, run.output()
    time.sleep(0.5)
    assert processes_mentioning(str(config)) == [], "processes left behind after SIGTERM"


def test_crashed_daemon_restarted_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    config = site(tmp_path, web={"enabled": False}, metrics={"enabled": False})
    cfg = load_config(config)
    run = FionaRun(config, tmp_path)
    try:
        wait_for(lambda: "stop with Ctrl-C" in run.output(), timeout=120, what="the banner")
        assert "web " not in run.output() and "metrics " not in run.output()
        pid = wait_for(
            lambda: _pid(cfg.paths.pidfile("storescpd")), timeout=60, what="the receiver's pid file"
        )
        wait_for(lambda: echoscu(cfg.dicom_port).returncode == 0, timeout=60, what="the receiver")
        os.kill(pid, signal.SIGKILL)  # a crash
        new = wait_for(
            lambda: (p := _pid(cfg.paths.pidfile("storescpd"))) not in (None, pid) and p,
            timeout=60,
            what="the restarted receiver",
        )
        wait_for(
            lambda: echoscu(cfg.dicom_port).returncode == 0,
            timeout=60,
            what="the receiver answering again",
        )
        assert "storectl" in run.output() and "restarting" in run.output()
        assert new in descendants(run.proc.pid)
        # a second gateway on the same site refuses, in one line
        again = run_bin("fiona", "run", config=config, timeout=120)
        assert (
            again.returncode == 2
            and f"fiona run already runs for this site (pid {run.proc.pid})" in again.stderr
        )
        assert len(again.stderr.strip().splitlines()) == 1, again.stderr
    finally:
        rc = run.stop(signal.SIGINT)  # Ctrl-C
    assert rc == 0, run.output()
    time.sleep(0.5)
    assert processes_mentioning(str(config)) == []


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _service_line(config: Path, name: str) -> tuple[int, str]:
    st = run_bin("fiona", "status", config=config, timeout=120)
    lines = [ln for ln in st.stdout.splitlines() if ln.strip().startswith(name + " ")]
    assert lines, st.stdout + st.stderr
    return st.returncode, lines[0]


def _stays_down(cfg: Any, run: FionaRun, seconds: float) -> None:
    """Several supervisor cycles (0.5 s each, first restart after 1 s) without a receiver."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert _alive_pid(cfg.paths.pidfile("storescpd")) is None, run.output()
        time.sleep(0.25)


def _alive_pid(path: Path) -> int | None:
    pid = _pid(path)
    return pid if pid is not None and Path(f"/proc/{pid}").exists() and not _zombie(pid) else None


@pytest.mark.parametrize(
    ("stop", "start"),
    [(("storectl", "stop"), ("storectl", "start")), (("fiona", "stop"), ("fiona", "start"))],
    ids=["storectl", "fiona"],
)
def test_operator_stop_is_honoured_and_a_crash_is_not(
    tmp_path: Path, stop: tuple[str, str], start: tuple[str, str]
) -> None:
    config = site(tmp_path, web={"enabled": False}, metrics={"enabled": False})
    cfg = load_config(config)
    run = FionaRun(config, tmp_path)
    try:
        wait_for(lambda: "stop with Ctrl-C" in run.output(), timeout=120, what="the banner")
        wait_for(lambda: echoscu(cfg.dicom_port).returncode == 0, timeout=60, what="the receiver")

        r = run_bin(*stop, config=config, timeout=120)
        assert r.returncode == 0 and "stopped" in r.stdout, r.stdout + r.stderr
        assert f"storectl: fiona run (pid {run.proc.pid}) keeps it stopped" in r.stdout
        _stays_down(cfg, run, 5.0)  # ten supervisor cycles, five times the first restart delay
        assert echoscu(cfg.dicom_port).returncode != 0
        rc, line = _service_line(config, "storectl")
        assert "stopped by operator" in line and "DOWN" not in line, line
        assert rc == 0  # an intended stop is not a failure
        assert "stopped by an operator" in run.output()
        if stop[0] == "fiona":
            _rc, psf = _service_line(config, "processSingleFile")
            assert "stopped by operator" in psf, psf

        r = run_bin(*start, config=config, timeout=180)
        assert r.returncode == 0 and "started by fiona run" in r.stdout, r.stdout + r.stderr
        wait_for(lambda: echoscu(cfg.dicom_port).returncode == 0, timeout=60, what="receiver back")
        pid = _alive_pid(cfg.paths.pidfile("storescpd"))
        assert pid in descendants(run.proc.pid)  # the supervisor's child, not a daemon beside it
        rc, line = _service_line(config, "storectl")
        assert rc == 0 and "running" in line, line

        r = run_bin(stop[0], "restart", config=config, timeout=180)  # stop + start: back at once
        assert r.returncode == 0 and "started by fiona run" in r.stdout, r.stdout + r.stderr
        pid = wait_for(
            lambda: (p := _alive_pid(cfg.paths.pidfile("storescpd"))) not in (None, pid) and p,
            timeout=60,
            what="the restarted receiver",
        )
        assert pid in descendants(run.proc.pid)
        wait_for(lambda: echoscu(cfg.dicom_port).returncode == 0, timeout=60, what="restarted")

        os.kill(pid, signal.SIGKILL)  # a crash after all that: restarted
        wait_for(
            lambda: (p := _alive_pid(cfg.paths.pidfile("storescpd"))) not in (None, pid) and p,
            timeout=60,
            what="the restarted receiver",
        )
        wait_for(lambda: echoscu(cfg.dicom_port).returncode == 0, timeout=60, what="answering")
    finally:
        rc = run.stop()
    assert rc == 0, run.output()
    time.sleep(0.5)
    assert processes_mentioning(str(config)) == []
