"""bin/storectl: the receiver daemon's start / status / stop, as cron and operators use it."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fionagw.config import load_config
from support.site import echoscu, pydicom_test_file, read_log, run_bin, storescu


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def config(site_config: Path) -> Iterator[Path]:
    yield site_config
    run_bin("storectl", "stop", config=site_config)  # never leave a daemon behind


@pytest.mark.slow
def test_cron_keepalive_honours_an_operator_stop(config: Path) -> None:
    """The crontab's keep-alive line must not undo `storectl stop` ten minutes later."""
    cfg = load_config(config)
    crontab = (Path(__file__).resolve().parents[2] / "cron" / "fiona.crontab").read_text()
    assert "bin/storectl keepalive" in crontab and "bin/processSingleFile keepalive" in crontab

    first = run_bin("storectl", "keepalive", config=config)  # nobody stopped it: it starts
    assert first.returncode == 0, first.stdout + first.stderr
    assert echoscu(cfg.dicom_port).returncode == 0

    stop = run_bin("storectl", "stop", config=config)
    assert stop.returncode == 0
    assert "stays stopped until `storectl start`" in stop.stdout
    held = run_bin("storectl", "keepalive", config=config)
    assert held.returncode == 0
    assert "stopped by an operator since" in held.stdout
    assert run_bin("storectl", "status", config=config).returncode == 3
    assert echoscu(cfg.dicom_port).returncode != 0

    assert run_bin("storectl", "start", config=config).returncode == 0  # the operator's start
    again = run_bin("storectl", "keepalive", config=config)
    assert "already running" in again.stdout
    assert echoscu(cfg.dicom_port).returncode == 0


@pytest.mark.slow
def test_start_status_second_start_stop(config: Path) -> None:
    cfg = load_config(config)
    r = run_bin("storectl", "start", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"started \(pid (\d+)\)", r.stdout)
    assert m, r.stdout
    pid = int(m.group(1))
    assert alive(pid)
    assert cfg.paths.pidfile("storescpd").read_text().split()[0] == str(pid)

    status = run_bin("storectl", "status", config=config)
    assert status.returncode == 0
    assert f"running (pid {pid}" in status.stdout

    again = run_bin("storectl", "start", config=config)
    assert again.returncode == 0
    assert f"already running (pid {pid})" in again.stdout

    assert echoscu(cfg.dicom_port).returncode == 0
    sent = storescu(cfg.dicom_port, pydicom_test_file("MR_small.dcm"))
    assert sent.returncode == 0, sent.stderr
    assert len([p for p in cfg.paths.archive.rglob("MR.*") if p.is_file()]) == 1
    assert cfg.paths.fifo.is_fifo()
    entries = read_log(cfg.paths.logfile("storescpd"))
    assert any(e["message"] == "SCP listening" and e["pid"] == pid for e in entries)

    stop = run_bin("storectl", "stop", config=config)
    assert stop.returncode == 0
    assert f"stopped (pid {pid})" in stop.stdout
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
    assert not cfg.paths.pidfile("storescpd").exists()
    after = run_bin("storectl", "status", config=config)
    assert after.returncode == 3 and "not running" in after.stdout
    assert echoscu(cfg.dicom_port).returncode != 0
    entries = read_log(cfg.paths.logfile("storescpd"))
    assert any(e["message"] == "SCP stopped" for e in entries)


def test_stop_when_not_running_is_fine(config: Path) -> None:
    r = run_bin("storectl", "stop", config=config)
    assert r.returncode == 0 and "not running" in r.stdout


@pytest.mark.slow
def test_enabled_file_zero_disables_start(config: Path) -> None:
    cfg = load_config(config)
    cfg.paths.config_dir.mkdir(parents=True)
    cfg.paths.enabled_file.write_text("0 receiver off\n")
    r = run_bin("storectl", "start", config=config)
    assert r.returncode == 0
    assert "disabled" in r.stdout
    assert not cfg.paths.pidfile("storescpd").exists()
    assert echoscu(cfg.dicom_port).returncode != 0

    cfg.paths.enabled_file.write_text("1\n")
    r = run_bin("storectl", "start", config=config)
    assert r.returncode == 0 and "started" in r.stdout


def test_port_in_use_fails_with_one_line(config: Path) -> None:
    cfg = load_config(config)
    with socket.socket() as s:
        s.bind((cfg.dicom_ip, cfg.dicom_port))
        s.listen()
        r = run_bin("storectl", "start", config=config)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(config) in lines[0]
    assert "DICOMPORT" in lines[0]
    assert str(cfg.dicom_port) in lines[0] and "in use" in lines[0]
    assert not cfg.paths.pidfile("storescpd").exists()


def test_bad_config_json_names_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"DATADIR": str(tmp_path / "data")}, indent=2)[:-2] + ",\n}")
    r = run_bin("storectl", "start", config=bad)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(bad) in lines[0]
    assert re.search(r"line \d+ column \d+", lines[0]), lines[0]


# One file per transfer syntax a modality or PACS may send (pydicom's bundled test files).
MIXED_FOLDER = {
    "MR_small_implicit.dcm": "1.2.840.10008.1.2",  # implicit VR little endian
    "CT_small.dcm": "1.2.840.10008.1.2.1",  # explicit VR little endian
    "MR_small_bigendian.dcm": "1.2.840.10008.1.2.2",  # explicit VR big endian (retired)
    "image_dfl.dcm": "1.2.840.10008.1.2.1.99",  # deflated
    "SC_rgb_jpeg_dcmtk.dcm": "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "JPGExtended.dcm": "1.2.840.10008.1.2.4.51",  # JPEG extended
    "SC_rgb_jpeg_gdcm.dcm": "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "MR_small_jpeg_ls_lossless.dcm": "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "JPEGLSNearLossless_08.dcm": "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "MR_small_jp2klossless.dcm": "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "JPEG2000.dcm": "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "MR_small_RLE.dcm": "1.2.840.10008.1.2.5",  # RLE lossless
}
UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def mixed_folder(folder: Path) -> dict[str, str]:
    """The files of MIXED_FOLDER under ``folder``, each a distinct instance of one study (the
    bundled files share UIDs); returns SOP Instance UID -> transfer syntax."""
    from pydicom import dcmread
    from pydicom.uid import generate_uid

    study, sent = generate_uid(), {}
    folder.mkdir(parents=True)
    for i, (name, syntax) in enumerate(MIXED_FOLDER.items()):
        ds = dcmread(pydicom_test_file(name))
        assert ds.file_meta.TransferSyntaxUID == syntax, name
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = study  # one of them has none
        sub = folder / f"series{i % 3}"  # a folder tree, as a CD or an export has
        sub.mkdir(exist_ok=True)
        ds.save_as(sub / f"IM{i:04d}", enforce_file_format=True)
        sent[ds.SOPInstanceUID] = syntax
    return sent


def readme_send_command() -> str:
    """The command README.md gives for sending a folder to the gateway."""
    from support.site import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"`((?:dcmsend|storescu) [^`]*/path/to/dicom/[^`]*)`", text)
    assert len(commands) == 1, commands
    return commands[0]


@pytest.mark.slow
def test_readme_send_command_delivers_a_folder_of_mixed_transfer_syntaxes(
    config: Path, tmp_path: Path
) -> None:
    import shlex
    import subprocess

    from pydicom import dcmread

    cfg = load_config(config)
    sent = mixed_folder(tmp_path / "mixed")
    r = run_bin("storectl", "start", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    # README's words with this site's port, the folder and the report under tmp_path
    here = {"/path/to/dicom/": f"{tmp_path / 'mixed'}/", "11112": str(cfg.dicom_port)}
    argv = [
        here.get(w, str(tmp_path / w) if w.endswith(".txt") else w)
        for w in shlex.split(readme_send_command())
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    arrived = {}
    for f in cfg.paths.archive.glob("*/*"):
        ds = dcmread(f, stop_before_pixels=True)
        arrived[ds.SOPInstanceUID] = ds.file_meta.TransferSyntaxUID
    assert set(arrived) == set(sent), (done.stdout + done.stderr)[-3000:]
    for uid, syntax in sent.items():  # compressed data as it was sent: nothing decompressed
        if syntax not in UNCOMPRESSED:
            assert arrived[uid] == syntax, (uid, syntax, arrived[uid])
    report = [w for w in argv if w.endswith(".txt")]
    if report:  # the report the README points to says so too
        text = Path(report[0]).read_text()
        assert f"with status SUCCESS  : {len(sent)}" in text, text[-600:]
