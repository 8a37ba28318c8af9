"""Soak: the whole gateway under ``fiona run`` takes concurrent senders and injected faults, and
afterwards nothing is lost, duplicated or leaked.

Several dcmtk storescu senders (one per study, several vendors, two studies JPEG-lossless / RLE
compressed, a few broken files mixed in) deliver to the receiver; a coupling list routes the
studies to two keyed-de-identification projects whose destination is an Orthanc research PACS.
While that runs the test SIGKILLs processSingleFile a few times (the supervisor restarts it),
SIGKILLs the receiver once mid-association (the senders retry what got no Success), stops Orthanc
for ~20 s during delivery, and starts the cron jobs twice at once (their locks must hold).

Then it checks the real state: every acknowledged instance is in Orthanc exactly once under the
de-identified SOP UID the project's keyed mapping gives, no temp leftovers, no leaked processes,
each daemon's peak RSS, no PHI in any log under DATADIR nor in Orthanc's stored files; the table
is printed and written to tests/artifacts/soak-table.txt. ``--soak-minutes N`` repeats rounds
(new studies, the same faults) until N minutes have passed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from fionagw.config import SiteConfig, load_config
from fionagw.deid.factory import deidentifier_for
from fionagw.deid.project_settings import settings_for_project
from fionagw.tracking.factory import open_tracker
from fionagw.tracking.records import COMPLETE_OK
from support.orthanc_peer import OrthancPeer
from support.site import BIN, ROOT, echoscu, free_port, run_bin, wait_for, write_config
from support.synth import ct_study, standard_mr_study

pytestmark = [pytest.mark.slow, pytest.mark.soak]

ARTIFACTS = ROOT / "tests" / "artifacts"
SENDER_LOGS = ARTIFACTS / "soak-senders"  # each storescu run's output, for a failed run
PROJECTS_YML = """projects:
  ALPHA:
    participant_id: '^ALPHA[0-9]{3}$'
    events: [baseline]
    destination: research-pacs
    deid: {mode: keyed}
  BETA:
    participant_id: '^BETA[0-9]{3}$'
    events: [baseline]
    destination: research-pacs
    deid: {mode: keyed}
"""
JOBS = ("detectStudyArrival", "populateIncoming", "createTransferRequest", "anonymizeAndSend")
RSS_LIMIT_MB = 300
# (vendor, kind, images, compression): 6 studies of ~100-200 images, two compressed
STUDIES = [
    ("SIEMENS", "mr", 20, None),
    ("GE", "mr", 20, "jpeg"),
    ("PHILIPS", "mr", 16, None),
    ("SIEMENS", "ct", 150, "rle"),
    ("GE", "ct", 120, None),
    ("PHILIPS", "mr", 24, None),
]


@dataclass
class Study:
    number: int
    project: str
    participant: str
    patient_id: str
    patient_name: str
    accession: str
    files: list[Path]
    broken: list[Path]
    extra: tuple[str, ...]
    sops: dict[Path, str] = field(default_factory=dict)
    acknowledged: set[Path] = field(default_factory=set)
    unreadable: set[Path] = field(default_factory=set)  # storescu refused to read them
    attempts: int = 0
    retried: int = 0


# --- the peers ---------------------------------------------------------------------------


class FionaRun:
    def __init__(self, config: Path, log_dir: Path) -> None:
        self.log = log_dir / "soak-fiona-run.out"
        self.out = open(self.log, "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(BIN / "fiona"), "--config", str(config), "run"],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def output(self) -> str:
        self.out.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(90)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.out.close()


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                children.setdefault(int(_stat(int(d.name))[1]), []).append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    out, stack = set(), [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            if c not in out:
                out.add(c)
                stack.append(c)
    return out


def processes_mentioning(text: str) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = _stat(int(d.name))[0]
        except (OSError, IndexError):
            continue
        if text in cmd and state != "Z":
            found.append(f"{d.name}: {cmd.strip()}")
    return found


def _daemon_name(pid: int) -> str | None:
    """The daemon a process is: ``fiona run`` itself or a supervised child (``<program>
    foreground``, ``fiona web``); None for the cron jobs it starts (they come and go)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    for i, word in enumerate(argv):
        if word.startswith(str(BIN)):
            rest = [a for a in argv[i + 1 :] if a and not a.startswith("-") and "config" not in a]
            program = Path(word).name
            if program == "fiona" and rest and rest[0] in ("run", "web"):
                return f"fiona {rest[0]}"
            return program if rest and rest[0] == "foreground" else None
    return None


class RssSampler:
    """VmHWM (peak resident set) of every process under fiona run, per daemon name."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_kb: dict[str, int] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for pid in descendants(self.root) | {self.root}:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
                name = _daemon_name(pid)
                if m and name:
                    self.peak_kb[name] = max(self.peak_kb.get(name, 0), int(m.group(1)))

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)


# --- the senders ---------------------------------------------------------------------------

SENDING = re.compile(r"^I: Sending file: (.+)$")
RESPONSE = re.compile(r"^I: Received Store Response \((\w+)")
UNREADABLE = re.compile(r"^E: Bad DICOM file: (.+?): ")


def store(port: int, aet: str, files: list[Path], extra: tuple[str, ...], log: Path) -> set[Path]:
    """One storescu run (its output kept in ``log``); the files whose C-STORE got Success (or
    Warning) in its output."""
    exe = shutil.which("storescu")
    assert exe, "dcmtk is not installed: run ./tests/run, which installs it"
    r = subprocess.run(
        [exe, "-v", "-nh", "-aet", aet, "-aec", "FIONA", *extra, "127.0.0.1", str(port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=600,
    )
    log.write_text(f"exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    ok: set[Path] = set()
    unreadable: set[Path] = set()
    current: Path | None = None
    for line in (r.stdout + "\n" + r.stderr).splitlines():
        if m := UNREADABLE.match(line):
            unreadable.add(Path(m.group(1)))
        elif m := SENDING.match(line):
            current = Path(m.group(1).strip())
        elif (m := RESPONSE.match(line)) and current is not None:
            if m.group(1) in ("Success", "Warning"):
                ok.add(current)
            current = None
    return ok, unreadable


def sender(port: int, study: Study, max_attempts: int = 12) -> None:
    """Send the study (with its broken files) and retry what got no Success, like a PACS."""
    pending = study.files + study.broken
    while pending and study.attempts < max_attempts:
        study.attempts += 1
        if study.attempts > 1:
            study.retried += len([p for p in pending if p not in study.broken])
        aet = f"SENDER{study.number}"
        log = SENDER_LOGS / f"{aet}-{study.attempts}.log"
        ok, unreadable = store(port, aet, pending, study.extra, log)
        study.acknowledged |= ok
        study.unreadable |= unreadable
        pending = [p for p in pending if p not in study.acknowledged | study.unreadable]
        if pending and study.attempts < max_attempts:
            time.sleep(3)


def make_studies(tmp: Path, round_no: int) -> list[Study]:
    studies = []
    for i, (vendor, kind, n, compression) in enumerate(STUDIES):
        number = round_no * 10 + i
        project = "ALPHA" if i % 2 == 0 else "BETA"
        who = {
            "patient_id": f"SOAKPID{number:04d}",
            "patient_name": f"Soakname{number:04d}^Person",
            "accession": f"SOAKACC{number:04d}",
        }
        folder = tmp / f"round{round_no}" / f"study{i}"
        make = standard_mr_study if kind == "mr" else ct_study
        size = {"n_per_series": n} if kind == "mr" else {"n_images": n}
        files = make(folder, vendor, rows=64, cols=64, seed=number, **size, **who)  # type: ignore[operator]
        extra: tuple[str, ...] = ()
        if compression:
            tool, ts = ("dcmcjpeg", "-xs") if compression == "jpeg" else ("dcmcrle", "-xr")
            for f in files:
                subprocess.run([tool, str(f), str(f)], check=True, capture_output=True)
            extra = (ts,)
        broken = []
        if i < 3:  # a few broken files among the good ones: storescu cannot send them
            bad = folder / "broken"
            bad.mkdir()
            (bad / "not-dicom.dcm").write_bytes(b"this is no DICOM file\n" * 10)
            cut = files[0].read_bytes()
            (bad / "truncated.dcm").write_bytes(cut[: len(cut) // 3])
            broken = sorted(bad.iterdir())
        sops = {f: str(dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
        studies.append(
            Study(
                number,
                project,
                f"{project}{number:03d}",
                who["patient_id"],
                who["patient_name"],
                who["accession"],
                files,
                broken,
                extra,
                sops,
            )
        )
    return studies


# --- faults --------------------------------------------------------------------------------


def _pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def kill_daemon(cfg: SiteConfig, name: str) -> int:
    """SIGKILL the daemon and wait until the supervisor has started a new one."""
    pid = wait_for(lambda: _pid(cfg.paths.pidfile(name)), timeout=120, what=f"{name} running")
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: (p := _pid(cfg.paths.pidfile(name))) not in (None, pid) and p,
        timeout=120,
        what=f"{name} restarted after SIGKILL",
    )
    return pid


def cron_twice(cfg: SiteConfig, stop: threading.Event, results: list[tuple[str, int, str]]) -> None:
    """Start each pipeline job twice at the same moment, again and again, beside fiona run's own
    schedule: the second copy must find the lock held and exit 0."""
    while not stop.wait(6):
        for job in JOBS:
            procs = [
                subprocess.Popen(
                    [str(BIN / job), "--config", str(cfg.config_file)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            for p in procs:
                out, err = p.communicate(timeout=600)
                results.append((job, p.returncode, err))


# --- the test ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def research_pacs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    peer = OrthancPeer(tmp_path_factory.mktemp("soak-orthanc"), "RESEARCH").start()
    yield peer
    peer.stop()


def site(tmp_path: Path, orthanc: OrthancPeer) -> Path:
    projects = tmp_path / "projects.yml"
    projects.write_text(PROJECTS_YML)
    return write_config(
        tmp_path,
        tracker={"backend": "local", "projects_file": str(projects)},
        arrival={"quiet_seconds": 4, "settle_seconds": 8},
        web={"enabled": False},
        metrics={"port": free_port()},
        destinations={
            "research-pacs": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": orthanc.dicom_port,
                "called_aetitle": orthanc.aet,
                "calling_aetitle": "FIONA",
            }
        },
        sending={"max_attempts": 100, "retry_base_seconds": 2, "retry_max_seconds": 8},
    )


def expected_uids(cfg: SiteConfig, studies: list[Study]) -> dict[str, tuple[Study, str]]:
    """De-identified SOP UID -> (study, original SOP UID) for every acknowledged instance,
    computed with the project's keyed mapping as anonymizeAndSend does."""
    projects = open_tracker(cfg).projects()
    deid = {name: deidentifier_for(settings_for_project(projects[name], cfg)) for name in projects}
    out = {}
    for s in studies:
        for f in s.acknowledged:
            if f in s.sops:
                out[deid[s.project].uid(s.sops[f])] = (s, s.sops[f])
    return out


def phi_hits(roots: list[Path], needles: list[str]) -> list[str]:
    hits = []
    encoded = [n.encode() for n in needles]
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file() and not p.is_symlink():
                data = p.read_bytes()
                hits += [f"{p}: {n.decode()}" for n in encoded if n in data]
    return hits


def test_soak_nothing_lost_duplicated_or_leaked(
    tmp_path: Path,
    research_pacs: OrthancPeer,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    minutes = float(request.config.getoption("--soak-minutes") or 0)
    orthanc = research_pacs
    config = site(tmp_path, orthanc)
    cfg = load_config(config)
    started = time.monotonic()
    shutil.rmtree(SENDER_LOGS, ignore_errors=True)
    SENDER_LOGS.mkdir(parents=True)
    run = FionaRun(config, ARTIFACTS)  # its output kept beside the table
    rss = RssSampler(run.proc.pid)
    studies: list[Study] = []
    cron_results: list[tuple[str, int, str]] = []
    faults = {"processSingleFile killed": 0, "receiver killed": 0, "Orthanc stopped (s)": 0.0}
    tree: set[int] = set()
    try:
        wait_for(lambda: "stop with Ctrl-C" in run.output(), timeout=180, what="fiona run")
        wait_for(lambda: echoscu(cfg.dicom_port).returncode == 0, timeout=120, what="receiver")
        round_no = 0
        while round_no == 0 or time.monotonic() - started < minutes * 60:
            batch = make_studies(tmp_path, round_no)
            studies += batch
            csv = tmp_path / f"coupling{round_no}.csv"
            csv.write_text(
                "AccessionNumber,ProjectName,subjectid,eventname\n"
                + "".join(f"{s.accession},{s.project},{s.participant},baseline\n" for s in batch)
            )
            r = run_bin("fiona", "coupling-list", "import", str(csv), config=config, timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr
            soak_round(cfg, orthanc, batch, studies, faults, cron_results)
            round_no += 1
        rounds = round_no
        tree = descendants(run.proc.pid)
        assert run.proc.poll() is None, run.output()
    finally:
        rss.stop()
        rc = run.stop()
    elapsed = time.monotonic() - started
    assert rc == 0, run.output()[-5000:]
    time.sleep(1)
    leaked = processes_mentioning(str(config)) + [
        str(p) for p in tree if Path(f"/proc/{p}").exists() and _stat(p)[0] != "Z"
    ]

    # -- the accounting -------------------------------------------------------------------
    expected = expected_uids(cfg, studies)
    stored = orthanc.sop_uids()  # de-identified SOP UID -> Orthanc instance
    instances = orthanc.instances()
    good = [f for s in studies for f in s.files]
    acknowledged = [f for s in studies for f in s.acknowledged]
    broken_acked = [f for s in studies for f in s.acknowledged if f in s.broken]
    lost = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    duplicates = len(instances) - len(set(stored))
    archived = sum(1 for p in cfg.paths.archive.rglob("*") if p.is_file())
    classified = sum(1 for p in cfg.paths.raw.glob("*/*/*") if p.is_symlink())
    tracker = open_tracker(cfg)
    transfers = tracker.transfers()
    sends = sum(1 for _ in cfg.paths.transfers_done.glob("*_ok_*"))
    checks = tracker.pacs_checks()  # the gateway's own C-FIND after each send
    cfind_found = sum(c.ids7_found for c in checks)
    cut_off = sum(
        1 for p in SENDER_LOGS.glob("*.log") if "DIMSE Failed to send message" in p.read_text()
    )
    done = sum(1 for t in transfers if t.transfers_complete == COMPLETE_OK)
    temp = cfg.paths.temp
    leftovers = [str(p) for p in temp.rglob("*") if p.is_file()] if temp.exists() else []
    needles = [x for s in studies for x in (s.patient_id, s.accession, s.patient_name)]
    needles += [s.patient_name.split("^")[0] for s in studies]
    needles += [uid for s in studies for uid in list(s.sops.values())[:5]]
    log_hits = phi_hits([cfg.paths.logs], needles)
    orthanc_hits = phi_hits([orthanc.directory / "storage"], needles)
    log_lines = [
        line
        for p in cfg.paths.logs.rglob("*")
        if p.is_file()
        for line in p.read_text(errors="replace").splitlines()
    ]
    lock_skips = sum("another copy holds the lock" in line for line in log_lines)
    deferred = sum("request not sent" in line for line in log_lines)
    bad_cron = [(j, rc_, err[-300:]) for j, rc_, err in cron_results if rc_ != 0]
    peaks = {name: kb / 1024 for name, kb in sorted(rss.peak_kb.items())}

    rows = [
        ("rounds", rounds),
        ("studies / projects", f"{len(studies)} / 2 (ALPHA, BETA keyed)"),
        ("images sent (good + broken)", f"{len(good)} + {sum(len(s.broken) for s in studies)}"),
        ("acknowledged (Success)", len(acknowledged)),
        ("failed and retried", sum(s.retried for s in studies)),
        ("storescu runs", sum(s.attempts for s in studies)),
        ("archived files", archived),
        ("classified (raw links)", classified),
        ("transfers done / total", f"{done} / {len(transfers)}"),
        ("study sends (re-queued for late series)", sends),
        ("delivered to Orthanc (REST)", len(instances)),
        ("found by the gateway's C-FIND", f"{cfind_found} in {len(checks)} checks"),
        ("expected de-identified SOP UIDs", len(expected)),
        ("duplicates", duplicates),
        ("lost", len(lost)),
        ("unexpected in Orthanc", len(unexpected)),
        ("broken files refused by storescu", sum(len(s.unreadable) for s in studies)),
        ("broken files acknowledged", len(broken_acked)),
        ("leftovers in temp folders", len(leftovers)),
        ("processes leaked", len(leaked)),
        ("PHI hits in logs", len(log_hits)),
        ("PHI hits in Orthanc storage", len(orthanc_hits)),
        *((f"fault: {k}", v) for k, v in faults.items()),
        ("storescu runs cut off mid-association", cut_off),
        ("sends deferred to retry (Orthanc down)", deferred),
        ("cron jobs started twice at once", f"{len(cron_results)} runs, {len(bad_cron)} failed"),
        ("lock held, second copy skipped", lock_skips),
        *((f"peak RSS {name} (MB)", f"{mb:.0f}") for name, mb in peaks.items()),
        ("duration (s)", f"{elapsed:.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    table = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "soak-table.txt").write_text(table + "\n")
    with capsys.disabled():  # shown in CI's output too, not only with -s
        print("\n" + table)

    assert len(acknowledged) >= len(good) * 0.95, "the senders' retries should get nearly all in"
    assert duplicates == 0 and not unexpected, unexpected[:5]
    assert not lost, f"{len(lost)} acknowledged instances not in Orthanc, e.g. {lost[:3]}"
    assert not broken_acked
    assert archived == classified == len(acknowledged), "one archived copy per instance"
    assert all(s.unreadable == set(s.broken) for s in studies)  # and no good file among them
    assert done == len(transfers) == len(studies), [
        (t.study_instance_uid[-8:], t.transfers_complete) for t in transfers
    ]
    assert not leftovers, leftovers[:5]
    assert not leaked, leaked
    assert not log_hits, log_hits[:5]
    assert not orthanc_hits, orthanc_hits[:5]
    assert not bad_cron, bad_cron[:3]
    assert peaks and all(mb < RSS_LIMIT_MB for mb in peaks.values()), peaks
    # per round: three classifier kills, one receiver kill, one Orthanc stop
    assert faults["processSingleFile killed"] == 3 * rounds and faults["receiver killed"] == rounds
    assert cut_off >= 1 and deferred >= 1, "the receiver kill and the Orthanc stop hit no one"


def soak_round(
    cfg: SiteConfig,
    orthanc: OrthancPeer,
    batch: list[Study],
    everything: list[Study],
    faults: dict[str, Any],
    cron_results: list[tuple[str, int, str]],
) -> None:
    """Send one batch of studies under the faults and wait until all of it is in Orthanc."""
    before = len(orthanc.instances())
    archived = sum(1 for p in cfg.paths.archive.rglob("*") if p.is_file()) if before else 0
    senders = [
        threading.Thread(target=sender, args=(cfg.dicom_port, s), daemon=True) for s in batch
    ]
    stop_cron = threading.Event()
    cron = threading.Thread(target=cron_twice, args=(cfg, stop_cron, cron_results), daemon=True)
    for t in senders:
        t.start()
    cron.start()
    errors: list[BaseException] = []

    def guarded(fn: Callable[[], None]) -> threading.Thread:
        def body() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        t = threading.Thread(target=body, daemon=True)
        t.start()
        return t

    def kill_receiver_mid_association() -> None:
        # once images are being received: the receiver dies with associations open
        wait_for(
            lambda: sum(1 for p in cfg.paths.archive.rglob("*") if p.is_file()) > archived + 100,
            timeout=300,
            what="the first images archived",
        )
        kill_daemon(cfg, "storescpd")
        faults["receiver killed"] += 1

    def kill_classifier() -> None:
        for _ in range(3):
            time.sleep(6)
            kill_daemon(cfg, "processSingleFile")
            faults["processSingleFile killed"] += 1

    def orthanc_outage() -> None:
        wait_for(lambda: len(orthanc.instances()) > before, timeout=400, what="delivery begun")
        t0 = time.monotonic()
        orthanc.stop()
        time.sleep(20)
        orthanc.start()
        faults["Orthanc stopped (s)"] += round(time.monotonic() - t0)

    fault_threads = [
        guarded(kill_receiver_mid_association),
        guarded(kill_classifier),
        guarded(orthanc_outage),
    ]
    for t in senders:
        t.join(900)
    for t in fault_threads:
        t.join(600)
    assert not errors, errors
    total = sum(len(s.acknowledged) for s in everything)

    def all_delivered() -> bool:
        # series that settled before the receiver kill were recorded first; the rest arrive
        # later and createTransferRequest queues the study again: done means no request queued
        try:
            return (
                len(orthanc.instances()) >= total
                and not any(cfg.paths.transfer_requests.glob("*.json"))
                and not any(cfg.paths.send_work.glob("*"))
                and all(t.transfers_complete == COMPLETE_OK for t in open_tracker(cfg).transfers())
            )
        except OSError:
            return False

    try:
        # twice, 20 s apart (more than quiet + settle + a job cycle): nothing queued again
        for _ in range(2):
            wait_for(all_delivered, timeout=900, what="every acknowledged instance in Orthanc")
            time.sleep(20)
        wait_for(all_delivered, timeout=900, what="every acknowledged instance in Orthanc")
    finally:
        stop_cron.set()
        cron.join(600)
