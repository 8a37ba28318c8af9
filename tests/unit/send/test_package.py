"""Packages (send/package.py): the archive, its ``md5sum -b`` line, the manifest with file
count, SOP UIDs and per-file SHA-256; a package exists only once its manifest does; the
.md5sum repair; the size limit of a destination."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import tarfile
from pathlib import Path

import pydicom
import pytest

from fionagw.ops import perms
from fionagw.send.base import SendContext
from fionagw.send.package import Package, packages, repair_md5sum, write_package
from support.synth import standard_mr_series, write_study

CONTEXT = SendContext("REMOTE", "R001", "baseline", "2.25.1234")
REQUEST = {"name": "1.2.3_REMOTE_R001_1.json", "row": {"redcap_repeat_instance": 1}}


@pytest.fixture
def study(tmp_path: Path) -> list[Path]:
    return write_study(tmp_path / "in", series=standard_mr_series("SIEMENS", 3)[:2])


def test_package_holds_the_study_its_manifest_and_an_md5sum_line(
    tmp_path: Path, study: list[Path]
) -> None:
    outbox = tmp_path / "outbox"
    pkg = write_package(outbox, study, CONTEXT, REQUEST)
    assert pkg.stem == "REMOTE_R001_baseline_2.25.1234"
    assert packages(outbox) == [pkg]
    # the .md5sum is what md5sum -b itself writes for the archive
    ours = pkg.md5sum.read_text()
    theirs = subprocess.run(
        ["md5sum", "-b", pkg.archive.name], cwd=outbox, capture_output=True, text=True, check=True
    ).stdout
    assert ours == theirs
    manifest = json.loads(pkg.manifest.read_text())
    sops = sorted(str(pydicom.dcmread(f).SOPInstanceUID) for f in study)
    assert manifest["file_count"] == len(study) and manifest["sop_instance_uids"] == sops
    assert manifest["archive"]["sha256"] == hashlib.sha256(pkg.archive.read_bytes()).hexdigest()
    assert manifest["archive"]["size"] == pkg.archive.stat().st_size
    with tarfile.open(pkg.archive) as tar:
        names = tar.getnames()
        assert names[0] == f"{pkg.stem}/manifest.json"  # first: readable without the rest
        inner = json.load(tar.extractfile(names[0]))  # type: ignore[arg-type]
        assert inner["files"] == manifest["files"]
        for entry in manifest["files"]:
            data = tar.extractfile(f"{pkg.stem}/{entry['path']}").read()  # type: ignore[union-attr]
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            assert len(data) == entry["size"]
    assert pkg.read_state()["request"] == REQUEST and pkg.read_state()["attempts"] == 0
    for f in (pkg.archive, pkg.md5sum, pkg.manifest, pkg.state):
        assert stat.S_IMODE(f.stat().st_mode) == perms.FILE_MODE
    assert stat.S_IMODE(outbox.stat().st_mode) == perms.DIR_MODE
    assert pkg.upload_files()[-1] == pkg.md5sum  # last: it says the archive beside it is whole
    assert not [p for p in outbox.iterdir() if p.name.startswith(".tmp-")]


def test_no_manifest_no_package(tmp_path: Path, study: list[Path]) -> None:
    """A crash while packaging leaves no manifest: the package does not exist for sendFiles,
    and writing it again gives the same package."""
    outbox = tmp_path / "outbox"
    pkg = write_package(outbox, study, CONTEXT, REQUEST)
    pkg.manifest.unlink()
    assert packages(outbox) == []
    again = write_package(outbox, study, CONTEXT, REQUEST)
    assert packages(outbox) == [again] and again == pkg


def test_md5sum_repair(tmp_path: Path, study: list[Path]) -> None:
    pkg = write_package(tmp_path, study, CONTEXT, None)
    right = pkg.md5sum.read_text()
    md5 = hashlib.md5(pkg.archive.read_bytes()).hexdigest()
    assert repair_md5sum(pkg) == (md5, False) and pkg.md5sum.read_text() == right
    pkg.md5sum.unlink()
    assert repair_md5sum(pkg) == (md5, True) and pkg.md5sum.read_text() == right
    pkg.md5sum.write_text("0" * 32 + f" *{pkg.archive.name}\n")
    assert repair_md5sum(pkg) == (md5, True) and pkg.md5sum.read_text() == right
    pkg.md5sum.write_text(f"{md5}  {pkg.archive.name}\n")  # text mode: not md5sum -b
    assert repair_md5sum(pkg) == (md5, True) and pkg.md5sum.read_text() == right


def test_move_keeps_the_package_whole(tmp_path: Path, study: list[Path]) -> None:
    pkg = write_package(tmp_path / "outbox", study, CONTEXT, REQUEST)
    moved = pkg.move_to(tmp_path / "sent")
    assert packages(tmp_path / "outbox") == [] and packages(tmp_path / "sent") == [moved]
    assert moved.read_state()["request"] == REQUEST
    assert isinstance(moved, Package) and moved.md5sum.exists()
