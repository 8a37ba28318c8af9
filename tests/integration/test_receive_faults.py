"""The SCP when things go wrong: unwritable archive, full disk, FIFO without reader or
full, shutdown in the middle of an association. Tests run as root in CI, so write
failures are made with means root cannot override (a file where a folder should be,
RLIMIT_FSIZE)."""

from __future__ import annotations

import fcntl
import os
import resource
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from fionagw.config import SiteConfig, load_config
from fionagw.receive import store
from support.scp import running_scp, temp_leftovers
from support.site import BIN, pydicom_test_file, read_log, storescu


@pytest.fixture
def scp(site_config: Path) -> Iterator[SiteConfig]:
    with running_scp(site_config) as cfg:
        yield cfg


def archived(cfg: SiteConfig) -> list[Path]:
    return sorted(p for p in cfg.paths.archive.rglob("*") if p.is_file())


def failures(cfg: SiteConfig) -> list[dict]:
    return [
        e
        for e in read_log(cfg.paths.logfile("storescpd"))
        if e["message"].startswith("store failed")
    ]


def make_series(directory: Path, n: int) -> Path:
    """``n`` small MR images of one new study (distinct SOP Instance UIDs)."""
    directory.mkdir(parents=True, exist_ok=True)
    ds = dcmread(pydicom_test_file("MR_small.dcm"))
    ds.StudyInstanceUID = generate_uid()
    for i in range(n):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(directory / f"{i:04d}.dcm", enforce_file_format=True)
    return directory


# --- write failures ------------------------------------------------------------------------


def test_archive_not_a_directory_answers_failure(scp: SiteConfig) -> None:
    archive = scp.paths.archive
    os.rmdir(archive)
    archive.write_text("not a directory")  # root cannot write below a regular file either
    r = storescu(scp.dicom_port, pydicom_test_file("CT_small.dcm"), extra=("-v",))
    assert r.returncode != 0
    assert "Received Store Response (Error: CannotUnderstand)" in r.stderr
    assert archive.read_text() == "not a directory"
    assert not temp_leftovers(scp)
    [entry] = failures(scp)
    assert entry["level"] == "WARNING"
    assert entry["status"] == f"0x{store.WRITE_FAILED:04X}"
    assert "Not a directory" in entry["message"]
    assert entry["calling_aet"] == "STORESCU"
    assert "PatientName" not in str(entry) and "CompressedSamples" not in str(entry)


def test_temp_folder_unusable_answers_failure(scp: SiteConfig) -> None:
    temp = scp.paths.temp
    shutil.rmtree(temp)  # with the empty temp files the receiver made ahead of time
    temp.write_text("in the way")
    r = storescu(scp.dicom_port, pydicom_test_file("MR_small.dcm"), extra=("-v",))
    assert r.returncode != 0
    assert "Received Store Response (Error: CannotUnderstand)" in r.stderr
    assert not archived(scp)
    [entry] = failures(scp)
    assert "cannot write received data" in entry["message"]


@pytest.mark.slow
def test_disk_full_answers_out_of_resources(site_config: Path) -> None:
    """RLIMIT_FSIZE makes writes beyond 64 KiB fail with EFBIG, even for root."""
    cfg = load_config(site_config)
    cfg.paths.create()

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    errors = site_config.parent / "storectl.stderr"
    with open(errors, "wb") as err:
        proc = subprocess.Popen(
            [str(BIN / "storectl"), "--config", str(site_config), "foreground"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            preexec_fn=limit,
        )
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline(), errors.read_text()[-2000:]
        big = storescu(
            cfg.dicom_port, pydicom_test_file("examples_ybr_color.dcm"), extra=("-R", "-xy", "-v")
        )  # 224 KiB
        assert big.returncode != 0
        assert "Received Store Response (Refused: OutOfResources)" in big.stderr
        small = storescu(cfg.dicom_port, pydicom_test_file("MR_small.dcm"))
        assert small.returncode == 0, small.stderr  # the receiver carries on
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    names = [p.name for p in archived(cfg)]
    assert len(names) == 1 and names[0].startswith("MR.")
    assert not temp_leftovers(cfg)
    [entry] = failures(cfg)
    assert entry["status"] == f"0x{store.OUT_OF_RESOURCES:04X}"
    assert "File too large" in entry["message"]


# --- the FIFO never blocks storing -----------------------------------------------------------


def test_no_fifo_reader_still_fast_and_complete(scp: SiteConfig, tmp_path: Path) -> None:
    assert scp.paths.fifo.is_fifo()
    series = make_series(tmp_path / "series", 60)
    t0 = time.monotonic()
    r = storescu(scp.dicom_port, series)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert len(archived(scp)) == 60
    assert elapsed < 15, f"60 images took {elapsed:.1f} s"
    assert len(os.listdir(scp.paths.arrived)) == 1


def test_full_fifo_does_not_stall_the_receiver(
    site_config: Path, tmp_path: Path, monkeypatch
) -> None:
    """A reader that never reads, on a pipe shrunk to one page (and left that small by the
    writer): lines get dropped (the processSingleFile reconciliation picks the files up),
    storing goes on."""
    from fionagw.receive import notify

    monkeypatch.setattr(notify, "PIPE_SIZE", 0)
    series = make_series(tmp_path / "series", 80)
    rfd = -1
    try:
        with running_scp(site_config) as scp:
            rfd = os.open(scp.paths.fifo, os.O_RDONLY | os.O_NONBLOCK)
            fcntl.fcntl(rfd, 1031, 4096)  # F_SETPIPE_SZ: ~25 lines fill it
            t0 = time.monotonic()
            r = storescu(scp.dicom_port, series)
            elapsed = time.monotonic() - t0
            assert r.returncode == 0, r.stderr
            assert len(archived(scp)) == 80
            assert elapsed < 20, f"80 images took {elapsed:.1f} s with a full FIFO"
        data = b""  # read once the receiver has stopped (its announcer has given up lines)
        while select.select([rfd], [], [], 0.1)[0]:
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        if rfd >= 0:
            os.close(rfd)
    lines = data.decode().splitlines(keepends=True)
    assert 10 <= len(lines) < 80
    assert all(
        line.startswith("STORESCU,FIONA,127.0.0.1,")
        and line.endswith("\n")
        and line.count(",") == 4
        for line in lines
    )


# --- shutdown ----------------------------------------------------------------------------


@pytest.mark.slow
def test_stop_during_a_transfer_leaves_only_complete_files(
    site_config: Path, tmp_path: Path, monkeypatch
) -> None:
    from fionagw.receive import scp as scp_module

    # On a quiet machine 600 images took about 1 s and could all arrive before the stop took
    # effect: send enough that the stop always lands mid-transfer.
    monkeypatch.setattr(scp_module, "SHUTDOWN_GRACE_S", 0.2)
    series = make_series(tmp_path / "series", 2000)
    with running_scp(site_config) as cfg:
        proc = subprocess.Popen(
            ["storescu", "-aec", "FIONA", "+sd", "127.0.0.1", str(cfg.dicom_port), str(series)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while len(archived(cfg)) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = time.monotonic()
    stop_time = time.monotonic() - t0
    proc.wait(30)
    assert stop_time < 10
    files = archived(cfg)
    assert 20 <= len(files) < 2000
    for f in files:
        dcmread(f)  # every archived file is complete
    assert not temp_leftovers(cfg)


def test_archive_on_another_filesystem_is_copied_durably(scp: SiteConfig, monkeypatch) -> None:
    """rename() across filesystems fails with EXDEV: the file is copied in instead."""
    import errno

    real_rename = os.rename
    crossed = []

    def rename(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(src).startswith(str(scp.paths.temp)) and str(dst).startswith(str(scp.paths.archive)):
            crossed.append(dst)
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    source = pydicom_test_file("test-SR.dcm")  # storescu sends it byte for byte
    r = storescu(scp.dicom_port, source)
    assert r.returncode == 0, r.stderr
    [path] = archived(scp)
    assert crossed and Path(crossed[0]) == path
    assert path.read_bytes().endswith(source.read_bytes()[-4000:])
    assert dcmread(path).SOPInstanceUID == dcmread(source).SOPInstanceUID
    assert not temp_leftovers(scp)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_pynetdicom_process_settings_untouched(site_config: Path) -> None:
    """The SCP uses pynetdicom's PDU and negotiation pieces only: other pynetdicom users in
    the process (tests, `fiona run`, the DICOM sender) keep their settings."""
    from pynetdicom import _config, dimse_messages

    def snapshot() -> tuple:
        return (
            _config.UNRESTRICTED_STORAGE_SERVICE,
            _config.STORE_RECV_CHUNKED_DATASET,
            dimse_messages.NamedTemporaryFile,
        )

    before = snapshot()
    with running_scp(site_config):
        assert snapshot() == before
    assert snapshot() == before
