"""Exports without a PACS: the queue (FIONA's keys, no password in it), clearExports oldest
first on a small limit, a zip64 zip past 4 GB of sparse data, config errors, the zip name."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from fionagw.config import ConfigError, load_config
from fionagw.export import build
from fionagw.export import jobs as q
from fionagw.export.clear import clear_exports
from fionagw.export.runner import zip_name
from fionagw.export.settings import load_exports
from support.site import write_config

FIONA_KEYS = {
    "project",
    "studyinstanceuid",
    "accessionnumber",
    "exportType",
    "patientid",
    "event",
    "destination",
    "downloadAttempts",
    "user",
}


def _settings(tmp_path: Path, **exports: object):  # type: ignore[no-untyped-def]
    return load_exports(load_config(write_config(tmp_path, exports=exports)))


def test_queue_lines_have_fionas_keys_and_no_password(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    job = q.add_job(
        settings, q.ExportJob("DEMO", patientid="DEMO001", exportType="nifti"), "s3cret"
    )
    line = json.loads(settings.queue.read_text().splitlines()[0])
    assert FIONA_KEYS <= set(line) and line["exportType"] == "NIFTI" and line["encrypted"]
    assert "s3cret" not in settings.queue.read_text()
    assert "s3cret" not in (settings.state / f"{job.id}.json").read_text()
    secret = settings.secrets / job.id
    assert secret.read_text() == "s3cret" and secret.stat().st_mode & 0o777 == 0o600
    other = q.add_job(settings, q.ExportJob("DEMO", studyinstanceuid="1.2.3"))
    q.update_queue(settings, job.id, None)  # a job ends; the one added meanwhile stays
    assert [j.id for j in q.queued(settings)] == [other.id]
    with pytest.raises(q.ExportError, match="unknown export type 'ZIP'"):
        q.add_job(settings, q.ExportJob("DEMO", patientid="X", exportType="ZIP"))
    with pytest.raises(q.ExportError, match="study UID or a participant"):
        q.add_job(settings, q.ExportJob("DEMO"))
    with pytest.raises(q.ExportError):
        q.read_state(settings, "../../etc/passwd")


def test_clear_exports_deletes_oldest_first_on_a_small_limit(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_size_mb=0.25, max_disk_percent=100, temp_max_age_minutes=60)
    settings.files.mkdir(parents=True)
    now = 1_000_000.0
    for age, name in ((5, "new.zip"), (30, "mid.zip"), (90, "old.zip"), (60, "older.zip")):
        f = settings.files / name
        f.write_bytes(b"x" * 100_000)
        os.utime(f, (now - age * 60, now - age * 60))
    (settings.files / "keep.txt").write_text("not an export")
    for age, name in ((120, "tmp_a"), (10, "tmp_b")):
        (settings.folder / name).mkdir()
        os.utime(settings.folder / name, (now - age * 60, now - age * 60))
    result = clear_exports(settings, now=now)
    assert [p.name for p in result.files] == ["old.zip", "older.zip"]  # 400 kB -> 200 kB
    assert sorted(p.name for p in settings.files.iterdir()) == ["keep.txt", "mid.zip", "new.zip"]
    assert [p.name for p in result.temp_folders] == ["tmp_a"]
    assert (settings.folder / "tmp_b").is_dir() and not (settings.folder / "tmp_a").exists()


@pytest.mark.slow
def test_zip64_past_4_gb_opens(tmp_path: Path) -> None:
    """A sparse 4.3 GB (over 2**32 bytes) file streams through zip64 (deflate level 1: the
    zeros shrink, so the test writes megabytes, not gigabytes) and opens."""
    root = tmp_path / "tree"
    root.mkdir()
    big = root / "big.dcm"
    with open(big, "wb") as f:
        f.truncate(4_300_000_000)  # sparse: no disk used for zeros
    tree = build.Tree(root, files=[big])
    seen: list[tuple[int, int, int]] = []
    size = build.write_zip(tree, tmp_path / "big.zip", progress=lambda *a: seen.append(a), level=1)
    assert seen[-1] == (1, 1, 4_300_000_000) and size < 100_000_000
    with zipfile.ZipFile(tmp_path / "big.zip") as zf:
        info = zf.getinfo("big.dcm")
        assert info.file_size == 4_300_000_000 and info.extra.startswith(b"\x01\x00")  # zip64
        with zf.open(info) as member:
            assert member.read(1 << 20) == bytes(1 << 20)


def test_zip64_records_are_written_past_the_limit(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The zip64 path on small files (the limit lowered, as CPython's own zip64 tests do)."""
    import pyzipper
    import pyzipper.zipfile

    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
    monkeypatch.setattr(pyzipper.zipfile, "ZIP64_LIMIT", 1000)  # pyzipper's own zipfile copy
    root = tmp_path / "tree"
    root.mkdir()
    files = []
    for n in range(3):
        files.append(root / f"f{n}.dcm")
        files[-1].write_bytes(os.urandom(5000))
    build.write_zip(build.Tree(root, files=files), tmp_path / "z.zip", password="pw-1")
    with pyzipper.AESZipFile(tmp_path / "z.zip") as zf:
        zf.setpassword(b"pw-1")
        for f in files:
            info = zf.getinfo(f.name)
            assert info.extra.startswith(b"\x01\x00")  # the zip64 extended information field
            assert zf.read(f.name) == f.read_bytes()


def test_zip_name_and_config_errors(tmp_path: Path) -> None:
    job = q.ExportJob("DEMO", event="base line", exportType="PURE")
    assert zip_name(job, "DEMO001", "1.2.3", "") == "DEMO_DEMO001_base-line_1.2.3_none_PURE.zip"
    with pytest.raises(ConfigError, match="exports.max_size_mb: must be a number"):
        _settings(tmp_path, max_size_mb="big")
    with pytest.raises(ConfigError, match="exports.size: unknown key"):
        _settings(tmp_path, size=1)
