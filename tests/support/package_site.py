"""A site whose project REMOTE goes to a package destination (sftp or https): a study is
de-identified into the destination's outbox by anonymizeAndSend, then sendFiles delivers it."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

from fionagw.config import load_config
from fionagw.send.package import Package, packages
from fionagw.tracking.local import LocalTracker
from fionagw.tracking.records import Transfer
from fionagw.transfers.anonymize_and_send import AnonymizeAndSend
from support.site import write_config
from support.transfer_site import ingest, mr_study, request

PROJECTS = """
projects:
  REMOTE:
    participant_id: '^R[0-9]{3}$'
    destination: remote
    deid: {mode: keyed}
"""


class PackageSite:
    def __init__(self, tmp_path: Path, destination: dict[str, Any], **config: Any) -> None:
        self.tmp = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        projects = tmp_path / "projects.yml"
        projects.write_text(PROJECTS)
        self.config = write_config(
            tmp_path,
            tracker={"projects_file": str(projects)},
            destinations={"remote": destination},
            sending={"max_attempts": 3, "retry_base_seconds": 1, "retry_max_seconds": 2},
            **config,
        )
        self.cfg = load_config(self.config)
        self.cfg.paths.create()
        self.tracker = LocalTracker(self.cfg.paths.tracker_db, projects)
        self.study = ""

    def close(self) -> None:
        self.tracker.close()

    def outbox(self, state: str = "outbox") -> Path:
        return self.cfg.paths.packages("remote", state)

    def package_study(self, n: int = 3, participant: str = "R001") -> Package:
        """Ingest a synthetic study, request it for REMOTE, run anonymizeAndSend: the package."""
        before = packages(self.outbox())
        study = mr_study(self.tmp / participant, n=n, seed=f"package-{participant}")
        self.study = ingest(self.cfg, study)
        request(self.cfg, self.tracker, self.study, "REMOTE", participant)
        report = AnonymizeAndSend(self.cfg, self.tracker, processes=1).run()
        # (an earlier study of the same minute is queued again: FIONA's minute-precision
        # transfer_date; its package is written anew under the same name)
        assert f"{self.study}_REMOTE_{participant}_1.json" in report.sent, report
        [pkg] = [p for p in packages(self.outbox()) if p not in before]
        return pkg

    def transfer(self) -> Transfer:
        [t] = self.tracker.transfers(self.study)
        return t

    def log(self) -> str:
        return self.cfg.paths.logfile("sendFiles").read_text()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def assert_delivered_whole(remote: Path, pkg: Package, hidden_ok: bool = False) -> None:
    """The remote folder holds the package's three files under their final names only (and,
    with ``hidden_ok``, the receiver's own dot files), the archive matches its .md5sum and the
    manifest, and every DICOM file its SHA-256."""
    names = sorted(p.name for p in remote.iterdir() if not (hidden_ok and p.name[0] == "."))
    assert names == sorted(f.name for f in pkg.upload_files()), names
    archive = remote / pkg.archive.name
    assert (remote / pkg.md5sum.name).read_text() == f"{md5(archive)} *{archive.name}\n"
    manifest = json.loads((remote / pkg.manifest.name).read_text())
    assert manifest["archive"]["md5"] == md5(archive)
    assert manifest["archive"]["size"] == archive.stat().st_size
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        dicoms = [m for m in members if m.endswith(".dcm")]
        assert len(dicoms) == manifest["file_count"] == len(manifest["sop_instance_uids"])
        for entry in manifest["files"]:
            data = tar.extractfile(f"{pkg.stem}/{entry['path']}").read()  # type: ignore[union-attr]
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
