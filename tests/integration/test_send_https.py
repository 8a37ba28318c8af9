"""sendFiles to the suite's HTTPS receiver (resumable protocol, bearer token, self-signed
certificate the client is told to trust): a package arrives whole with the server's checksum
matching; a receiver that crashes mid-upload is resumed on the next run; a damaged partial
upload is detected by the server's checksum and sent anew; a client certificate logs in (its key
must be 0600); an untrusted certificate and a wrong
token are refused; a 2 GB sparse package resumes after a dropped connection."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fionagw.ops import perms
from fionagw.send import load_destinations
from fionagw.send.deliver import send_files
from fionagw.send.package import Package, repair_md5sum
from fionagw.tracking.records import COMPLETE_OK, ERROR_SEND
from support.https_receiver import Receiver
from support.package_site import PackageSite, assert_delivered_whole
from support.site import free_port, run_bin
from support.tls import self_signed

pytestmark = pytest.mark.slow  # an HTTPS receiver per test and several runs of sendFiles


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    rx = Receiver(tmp_path / "receiver", free_port())
    yield rx
    rx.stop()


def _site(tmp_path: Path, rx: Receiver, token: str | None = None, **extra: object) -> PackageSite:
    tmp_path.mkdir(parents=True, exist_ok=True)
    token_file = tmp_path / "upload.token"
    token_file.write_text((token or rx.token) + "\n")
    token_file.chmod(perms.SECRET_MODE)
    dest = {"type": "https", "url": rx.url, "token_file": str(token_file)}
    dest |= {"ca_file": str(rx.cert), "chunk_mb": 0.25, **extra}
    return PackageSite(tmp_path / "site", dest)


def test_package_arrives_and_server_checksum_matches(tmp_path: Path, receiver: Receiver) -> None:
    receiver.start()
    site = _site(tmp_path, receiver)
    try:
        check = load_destinations(site.cfg)["remote"].check()  # what the Settings page runs
        assert check.endswith("TLS verified, authenticated"), check
        pkg = site.package_study()
        result = run_bin("sendFiles", config=site.config)
        assert result.returncode == 0 and "1 sent" in result.stdout, result
        assert_delivered_whole(receiver.files, pkg, hidden_ok=True)
        assert list(receiver.uploads.iterdir()) == []
        t = site.transfer()
        assert t.transfers_complete == COMPLETE_OK and t.transfer_date and not t.transfer_error
    finally:
        site.close()


def test_receiver_crash_mid_upload_resumes_on_next_run(tmp_path: Path, receiver: Receiver) -> None:
    site = _site(tmp_path, receiver)
    try:
        pkg = site.package_study()
        size = pkg.archive.stat().st_size
        receiver.start(crash_after=size // 2)
        first = run_bin("sendFiles", config=site.config)
        assert first.returncode == 0 and "1 to retry" in first.stdout, first
        kept = (receiver.uploads / pkg.archive.name).stat().st_size
        assert 0 < kept < size and not (receiver.files / pkg.archive.name).exists()
        assert ERROR_SEND in site.transfer().transfer_error

        receiver.stop()
        receiver.start()
        time.sleep(1.1)  # the backoff of attempt 1
        second = run_bin("sendFiles", config=site.config)
        assert second.returncode == 0 and "1 sent" in second.stdout, second
        assert f"{pkg.archive.name}: resumed at {kept} bytes" in site.log()
        assert_delivered_whole(receiver.files, pkg, hidden_ok=True)
        assert site.transfer().transfers_complete == COMPLETE_OK
    finally:
        site.close()


def test_damaged_partial_upload_is_detected_and_sent_anew(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "fionagw.sendFiles")
    receiver.start()
    site = _site(tmp_path, receiver)
    try:
        pkg = site.package_study()
        receiver.uploads.mkdir(parents=True, exist_ok=True)
        (receiver.uploads / pkg.archive.name).write_bytes(b"\0" * (pkg.archive.stat().st_size // 2))
        report = send_files(site.cfg, site.tracker)
        assert report.sent == [pkg.stem], report
        assert f"{pkg.archive.name}: the server's checksum differs; sending anew" in caplog.text
        assert_delivered_whole(receiver.files, pkg, hidden_ok=True)
    finally:
        site.close()


def test_untrusted_certificate_and_wrong_token_are_refused(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.start()
    site = _site(tmp_path, receiver, ca_file=None)  # the system's CAs: not our self-signed one
    try:
        pkg = site.package_study()
        assert send_files(site.cfg, site.tracker).deferred == [pkg.stem]
        assert "TLS refused" in site.transfer().transfer_error_message
    finally:
        site.close()
    site = _site(tmp_path / "b", receiver, token="wrong-token")
    try:
        pkg = site.package_study()
        assert send_files(site.cfg, site.tracker).deferred == [pkg.stem]
        assert "authentication refused (HTTP 401)" in site.transfer().transfer_error_message
    finally:
        site.close()
    assert list(receiver.files.iterdir()) == []


def test_2gb_sparse_package_resumes_after_dropped_connection(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "fionagw.sendFiles")
    size = 2 << 30
    receiver.start(drop_after=700 << 20)
    site = _site(tmp_path, receiver, chunk_mb=64)
    try:
        pkg = Package(site.outbox(), "REMOTE_R001_1.2.826.0.1.3680043.10.1")
        perms.make_dirs(pkg.folder)
        with pkg.archive.open("wb") as fh:
            fh.truncate(size)  # sparse: 2 GB on the wire, nothing on disk
        repair_md5sum(pkg)
        pkg.manifest.write_text(json.dumps({"format": 1, "file_count": 0}))
        report = send_files(site.cfg, site.tracker)
        assert report.sent == [pkg.stem], report
        assert f"{pkg.archive.name}: connection lost at " in caplog.text
        final = receiver.files / pkg.archive.name
        assert final.stat().st_size == size
        zeros = hashlib.sha256()
        block = bytes(1 << 20)
        for _ in range(size >> 20):
            zeros.update(block)
        sidecar = receiver.files / f".{pkg.archive.name}.sha256"
        assert sidecar.read_text() == zeros.hexdigest()
        # resumed, not restarted: 32 chunks of 64 MiB and one more for the broken one
        patches = receiver.log.read_text().count('"PATCH /fiona/uploads/' + pkg.archive.name)
        assert patches <= 34, patches
        os.unlink(final)  # 2 GB of test data
    finally:
        site.close()


def test_client_certificate_authentication(tmp_path: Path, receiver: Receiver) -> None:
    cert, key = self_signed(tmp_path / "client", "client")
    key.chmod(perms.SECRET_MODE)
    receiver.start(client_ca=cert)  # no token: the certificate is the login
    dest = {"type": "https", "url": receiver.url, "cert_file": str(cert), "key_file": str(key)}
    site = PackageSite(tmp_path / "site", {**dest, "ca_file": str(receiver.cert)})
    try:
        pkg = site.package_study()
        assert send_files(site.cfg, site.tracker).sent == [pkg.stem]
        assert_delivered_whole(receiver.files, pkg, hidden_ok=True)
    finally:
        site.close()
    key.chmod(0o644)  # a client key others can read is not used
    site = PackageSite(tmp_path / "loose", {**dest, "ca_file": str(receiver.cert)})
    try:
        pkg = site.package_study()
        assert send_files(site.cfg, site.tracker).deferred == [pkg.stem]
        assert "chmod 600" in site.transfer().transfer_error_message
    finally:
        site.close()
