"""sendFiles to OpenSSH's sshd over SFTP: a package arrives whole and the tracker says so; sshd
killed mid-upload and restarted: the next run resumes and completes it, nothing duplicated; a
corrupted remote copy is detected and sent anew; an unknown or changed host key is refused;
a site that stays down makes the request fail after the maximum of attempts, and an operator
can send the package again; a package stuck for days is reported."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fionagw.send import load_destinations
from fionagw.send.base import SendContext
from fionagw.send.deliver import send_files
from fionagw.send.package import Package, packages, write_package
from fionagw.tracking.records import COMPLETE_ERROR, COMPLETE_OK, COMPLETE_PENDING, ERROR_SEND
from fionagw.transfers.failures import read_record
from support.package_site import PackageSite, assert_delivered_whole, md5
from support.site import BIN, run_bin
from support.sshd import Sshd

pytestmark = pytest.mark.slow  # a real sshd per test and several runs of sendFiles


@pytest.fixture
def sshd_server(tmp_path: Path) -> Iterator[Sshd]:
    server = Sshd(tmp_path / "sshd")
    server.start()
    yield server
    server.close()


@pytest.fixture
def site(tmp_path: Path, sshd_server: Sshd) -> Iterator[PackageSite]:
    s = PackageSite(tmp_path, sshd_server.destination())
    yield s
    s.close()


def test_package_arrives_whole_and_is_recorded(site: PackageSite, sshd_server: Sshd) -> None:
    check = load_destinations(site.cfg)["remote"].check()  # what the Settings page runs
    assert check.endswith("host key matches, logged in, folder writable"), check
    pkg = site.package_study()
    assert site.transfer().transfers_complete == COMPLETE_PENDING  # packaged, not delivered
    pkg.md5sum.unlink()  # FIONA's repair: a missing .md5sum is made anew before the upload
    result = run_bin("sendFiles", config=site.config)
    assert result.returncode == 0, result.stderr
    assert "1 sent" in result.stdout and "1 .md5sum recomputed" in result.stdout
    assert_delivered_whole(sshd_server.upload, pkg)
    # the site's own check, as DAIC runs it: md5sum -c on the delivered pair
    check = subprocess.run(
        ["md5sum", "-c", pkg.md5sum.name], cwd=sshd_server.upload, capture_output=True, text=True
    )
    assert check.returncode == 0 and ": OK" in check.stdout
    t = site.transfer()
    assert t.transfers_complete == COMPLETE_OK and t.transfer_date and not t.transfer_error
    assert packages(site.outbox()) == [] and len(packages(site.outbox("sent"))) == 1
    again = run_bin("sendFiles", config=site.config)  # nothing left: silent
    assert again.returncode == 0 and again.stdout == ""


def _wait_for(path: Path, size: int, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size >= size:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"{path.name} did not reach {size} bytes")


def test_sshd_killed_mid_upload_resumes(tmp_path: Path, sshd_server: Sshd) -> None:
    site = PackageSite(tmp_path / "slow", sshd_server.destination(bandwidth_mb_s=0.4))
    try:
        pkg = site.package_study()
        size = pkg.archive.stat().st_size
        assert size > 600_000
        part = sshd_server.upload / f".{pkg.archive.name}.part"
        proc = subprocess.Popen(
            [str(BIN / "sendFiles"), "--config", str(site.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for(part, size // 3, proc)
        sshd_server.kill()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "1 to retry" in out
        kept = part.stat().st_size
        assert 0 < kept < size
        assert not (sshd_server.upload / pkg.archive.name).exists()  # never a partial final file
        t = site.transfer()
        assert ERROR_SEND in t.transfer_error and t.transfers_complete == COMPLETE_ERROR
        assert "transfer broken off" in t.transfer_error_message

        sshd_server.start()
        time.sleep(1.1)  # the backoff of attempt 1 (sending.retry_base_seconds)
        result = run_bin("sendFiles", config=site.config)
        assert result.returncode == 0 and "1 sent" in result.stdout, result
        assert f"{pkg.archive.name}: resumed at " in site.log()
        assert_delivered_whole(sshd_server.upload, pkg)
        t = site.transfer()
        assert t.transfers_complete == COMPLETE_OK and not t.transfer_error
    finally:
        site.close()


def test_corrupted_remote_copies_are_detected_and_sent_anew(
    site: PackageSite,
    sshd_server: Sshd,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "fionagw.sendFiles")
    pkg = site.package_study()
    size = pkg.archive.stat().st_size
    # an unfinished upload whose bytes were damaged: as long as the archive, wrong content
    (sshd_server.upload / f".{pkg.archive.name}.part").write_bytes(b"\x5a" * size)
    # a manifest under its final name that is not ours (an older, broken delivery)
    (sshd_server.upload / pkg.manifest.name).write_text("{}")
    report = send_files(site.cfg, site.tracker)
    assert report.sent == [pkg.stem], report
    assert f"{pkg.archive.name}: remote copy does not match" in caplog.text
    assert_delivered_whole(sshd_server.upload, pkg)


def test_unknown_or_changed_host_key_is_refused(site: PackageSite, sshd_server: Sshd) -> None:
    pkg = site.package_study()
    sshd_server.known_hosts.write_text("")  # unknown
    report = send_files(site.cfg, site.tracker)
    assert report.deferred == [pkg.stem]
    assert "host key of [127.0.0.1]:" in site.transfer().transfer_error_message
    assert "is unknown" in site.transfer().transfer_error_message

    other = sshd_server.folder / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    sshd_server.write_known_hosts(Path(f"{other}.pub"))  # changed (a man in the middle?)
    report = send_files(site.cfg, site.tracker, now=time.time() + 60)
    assert report.deferred == [pkg.stem]
    assert "does not match" in site.transfer().transfer_error_message
    assert list(sshd_server.upload.iterdir()) == []  # nothing was sent to an unverified host
    assert "Accepted publickey" not in sshd_server.log.read_text()  # not even logged in


def test_site_down_fails_after_max_attempts_then_operator_retries(
    site: PackageSite,
    sshd_server: Sshd,
) -> None:
    pkg: Package = site.package_study()
    sshd_server.kill()
    for attempt in (1, 2, 3):  # sending.max_attempts = 3
        report = send_files(site.cfg, site.tracker, now=time.time() + 60 * attempt)
    assert report.failed == [pkg.stem] and packages(site.outbox()) == []
    [failed] = packages(site.outbox("failed"))
    request_name = f"{site.study}_REMOTE_R001_1.json"
    record = read_record(site.cfg.paths, request_name)
    assert record is not None and record.reason == "send" and record.attempts == 3
    assert "cannot connect" in record.error and "giving up" in record.error
    t = site.transfer()
    assert ERROR_SEND in t.transfer_error and "giving up" in t.transfer_error_message

    result = run_bin("sendFiles", "--retry", "remote", failed.stem, config=site.config)
    assert result.returncode == 0 and "back in the outbox" in result.stdout, result
    sshd_server.start()
    result = run_bin("sendFiles", config=site.config)
    assert "1 sent" in result.stdout, result
    assert_delivered_whole(sshd_server.upload, pkg)
    assert md5(sshd_server.upload / pkg.archive.name) == md5(site.outbox("sent") / pkg.archive.name)
    bad = run_bin("sendFiles", "--retry", "remote", "no-such-package", config=site.config)
    assert bad.returncode == 1 and "no failed package" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_key_file_others_can_read_is_not_used(tmp_path: Path, sshd_server: Sshd) -> None:
    sshd_server.user_key.chmod(0o644)
    site = PackageSite(tmp_path / "loose", sshd_server.destination())
    try:
        pkg = site.package_study()
        assert send_files(site.cfg, site.tracker).deferred == [pkg.stem]
        message = site.transfer().transfer_error_message
        assert "lets group or others read the SSH key" in message and "chmod 600" in message
        assert list(sshd_server.upload.iterdir()) == []
    finally:
        site.close()


def test_a_package_stuck_for_days_is_reported(site: PackageSite, sshd_server: Sshd) -> None:
    pkg = site.package_study()
    sshd_server.kill()
    three_days_ago = time.time() - 3 * 86400
    os.utime(pkg.manifest, (three_days_ago, three_days_ago))
    result = run_bin("sendFiles", config=site.config)
    assert result.returncode == 0, result.stderr
    assert f"1 in the outbox for over 2 days: {pkg.stem}" in result.stdout
    assert "package stuck in the outbox" in site.log()


def test_parallel_packages_each_on_its_own_connection(tmp_path: Path, sshd_server: Sshd) -> None:
    site = PackageSite(tmp_path / "par", sshd_server.destination(parallel=2))
    try:
        first = site.package_study(n=1, participant="R001")
        second = site.package_study(n=1, participant="R002")
        result = run_bin("sendFiles", config=site.config)
        assert result.returncode == 0 and "2 sent" in result.stdout, result
        for pkg in (first, second):
            assert md5(sshd_server.upload / pkg.archive.name) == md5(
                site.outbox("sent") / pkg.archive.name
            )
        assert sshd_server.log.read_text().count("Accepted publickey") == 2
    finally:
        site.close()


def test_package_rewritten_during_its_upload_is_sent_again(
    tmp_path: Path, sshd_server: Sshd
) -> None:
    """A resend writes the package anew while sendFiles uploads the old one: the old one is
    delivered whole, the new one stays in the outbox and goes on the next run."""
    site = PackageSite(tmp_path / "race", sshd_server.destination(bandwidth_mb_s=0.5))
    try:
        pkg = site.package_study()
        old_md5 = md5(pkg.archive)
        manifest = json.loads(pkg.manifest.read_text())
        context = SendContext(
            manifest["project"],
            manifest["participant"],
            manifest["event"],
            manifest["study_instance_uid"],
        )
        proc = subprocess.Popen(
            [str(BIN / "sendFiles"), "--config", str(site.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for(sshd_server.upload / f".{pkg.archive.name}.part", 100_000, proc)
        some = sorted((tmp_path / "race" / "R001").rglob("*.dcm"))[:2]
        new = write_package(site.outbox(), some, context, pkg.read_state()["request"])
        new_md5 = md5(new.archive)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert md5(sshd_server.upload / pkg.archive.name) == old_md5  # the old one, whole
        assert packages(site.outbox()) == [new] and packages(site.outbox("sent")) == []
        assert "package rewritten while it was sent" in site.log()

        result = run_bin("sendFiles", config=site.config)
        assert "1 sent" in result.stdout, result
        assert md5(sshd_server.upload / pkg.archive.name) == new_md5
        assert md5(site.outbox("sent") / pkg.archive.name) == new_md5
    finally:
        site.close()
