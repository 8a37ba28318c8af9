"""The gate in anonymizeAndSend, in-process on a folder destination: a study without PatientSex
for a project gating on demographics is held ("held by QC", nothing written), a user without
the project's admin role cannot bypass, the admin's bypass queues it again and it is sent."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from fionagw.qc.bypass import BypassRefused, bypass
from fionagw.routing.requests import create_transfer_requests
from fionagw.transfers.anonymize_and_send import AnonymizeAndSend
from fionagw.transfers.failures import read_record
from fionagw.web.users import User
from support.transfer_site import ingest, mr_study, request, sent_files, transfer_site

pytestmark = pytest.mark.slow  # de-identifies and sends a study in-process

GATED = """  GATED:
    participant_id: '^G[0-9]{3}$'
    qc: {gates: [demographics]}
"""


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    gen = transfer_site(tmp_path)
    cfg, tracker, outbox, config = next(gen)
    projects = tmp_path / "projects.yml"
    projects.write_text(projects.read_text() + GATED)
    yield cfg, tracker, outbox
    gen.close()


def test_held_until_the_project_admin_bypasses(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox = site
    files = mr_study(tmp_path, 2)
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.PatientSex
        ds.save_as(f)
    study = ingest(cfg, files)
    path = request(cfg, tracker, study, "GATED", "G001")
    report = AnonymizeAndSend(cfg, tracker, processes=1).run()
    assert report.failed == [path.name] and sent_files(outbox) == []
    record = read_record(cfg.paths, path.name)
    assert record is not None and record.reason == "qc"
    assert record.error == (
        "held by QC: demographics (sex missing (PatientAge (0010,1010), PatientSex (0010,0040)): "
        "age: present)"
    )
    assert create_transfer_requests(cfg, tracker) == []  # held, not queued again

    with pytest.raises(BypassRefused) as refused:
        bypass(cfg, tracker, User("ada", frozenset({("GATED", "assign")})), study, "GATED", "x")
    assert refused.value.status == 403
    with pytest.raises(BypassRefused, match="Give a reason"):
        bypass(cfg, tracker, User("bob", frozenset({("GATED", "admin")})), study, "GATED", " ")
    outcome = bypass(
        cfg, tracker, User("bob", frozenset({("GATED", "admin")})), study, "GATED", "sex unknown"
    )
    assert outcome.checks == ["demographics"] and outcome.released == [path.name]
    report = AnonymizeAndSend(cfg, tracker, processes=1).run()
    assert report.sent == [path.name]
    assert len(sent_files(outbox)) == len(files)
