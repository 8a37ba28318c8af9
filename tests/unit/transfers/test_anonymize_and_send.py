"""anonymizeAndSend in-process on the folder destination: what is sent, what is held back, what
the tracker and the request files say afterwards, retries, and the release check stopping a leak."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from fionagw.deid.release import collect_identifiers
from fionagw.routing.requests import create_transfer_requests
from fionagw.tracking.records import COMPLETE_ERROR, COMPLETE_OK
from fionagw.transfers.anonymize_and_send import DELETED, AnonymizeAndSend
from fionagw.transfers.queue import RequestQueue
from support.synth import secondary_capture
from support.transfer_site import (
    PATIENT,
    PROJECTS,
    hide_phi_in_private_sequence,
    ingest,
    mr_study,
    request,
    sent_files,
    transfer_site,
)


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from transfer_site(tmp_path)


def transfer(tracker, study: str):  # type: ignore[no-untyped-def]
    [t] = tracker.transfers(study)
    return t


def test_study_sent_deidentified_and_recorded(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    files = mr_study(tmp_path)
    study = ingest(cfg, files)
    req = request(cfg, tracker, study, "ALPHA", "ALPHA001", "baseline")

    report = AnonymizeAndSend(cfg, tracker, processes=2).run()
    assert report.sent == [req.name] and not report.failed

    out = sent_files(outbox)
    assert len(out) == len(files)
    originals = [pydicom.dcmread(f) for f in files]
    ids = collect_identifiers(originals)
    for path in out:
        ds = pydicom.dcmread(path)
        assert ds.PatientID == "ALPHA001" and str(ds.PatientName) == "ALPHA001"
        assert ds.ClinicalTrialTimePointID == "baseline"
        assert not ids.find_bytes(path.read_bytes()), f"identifier left in {path.name}"
        assert ds.StudyDate != originals[0].StudyDate  # shifted
    uids = {pydicom.dcmread(p).StudyInstanceUID for p in out}
    assert len(uids) == 1 and study not in uids

    t = transfer(tracker, study)
    assert t.transfers_complete == COMPLETE_OK and t.transfer_date and not t.transfer_error
    assert t.transfer_mapped_uid == uids.pop()
    assert float(t.transfer_active_proc_time) >= 0
    assert not req.exists()
    [done] = list(cfg.paths.transfers_done.iterdir())
    assert done.name.startswith(req.name + "_ok_") and done.name.endswith(".log")
    [imaging] = tracker.imaging("ALPHA", "ALPHA001")
    assert (
        imaging.img_study_instance_uid == t.transfer_mapped_uid
        and imaging.img_event_name == "baseline"
    )
    inventory = json.loads(cfg.paths.review_inventory("ALPHA").read_text())
    assert "Nordmann" not in json.dumps(inventory)
    assert not any(cfg.paths.temp.joinpath("anonymizeAndSend").glob("*")), "work folder left behind"


def test_resend_gives_the_same_files(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    study = ingest(cfg, mr_study(tmp_path))
    request(cfg, tracker, study, "ALPHA", "ALPHA002")
    AnonymizeAndSend(cfg, tracker).run()
    first = {p.relative_to(outbox): p.read_bytes() for p in sent_files(outbox)}
    t = transfer(tracker, study)
    from fionagw.routing.requests import write_request

    assert write_request(cfg, t)  # the data manager asks for a resend
    assert AnonymizeAndSend(cfg, tracker).run().sent
    again = {p.relative_to(outbox): p.read_bytes() for p in sent_files(outbox)}
    assert again.keys() == first.keys()  # same names: nothing duplicated
    assert transfer(tracker, study).transfer_mapped_uid == t.transfer_mapped_uid


def test_presentation_states_removed_and_burned_in_held_back(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    files = mr_study(tmp_path, n=2, study_uid="1.2.826.0.1.3680043.9.7777.1")
    files += secondary_capture(
        tmp_path / "sc", **PATIENT, study_uid="1.2.826.0.1.3680043.9.7777.1", seed=2
    )  # another seed: another series UID
    pr = _presentation_state(files[0], tmp_path / "pr.dcm")
    study = ingest(cfg, [*files, pr])
    request(cfg, tracker, study, "NOPIX", "N003")  # pixel cleaning off: held back

    report = AnonymizeAndSend(cfg, tracker).run()
    assert report.failed and not report.sent  # held-back series make it an error to look at
    out = sent_files(outbox)
    modalities = {pydicom.dcmread(p).Modality for p in out}
    assert modalities == {"MR"} and len(out) == len(files) - 1  # no SC, no PR
    t = transfer(tracker, study)
    assert t.transfers_complete == COMPLETE_ERROR and t.transfer_error == {1}
    message = json.loads(t.transfer_error_message)
    assert (
        "CHECKBURNEDINFO" in message["held_back"][0] and "Screen capture" in message["held_back"][0]
    )
    assert t.transfer_mapped_uid  # the MR series did go
    [fail] = [
        p for p in cfg.paths.transfers_fail.iterdir() if p.name.endswith("_fail_messages.log")
    ]
    assert "held back" in json.loads(fail.read_text())["error"]


def test_project_may_accept_screen_captures(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    study = ingest(cfg, secondary_capture(tmp_path / "sc", **PATIENT, n_images=2))
    request(cfg, tracker, study, "SCREENS", "S001")
    assert AnonymizeAndSend(cfg, tracker).run().sent
    assert len(sent_files(outbox)) == 2


def test_release_check_stops_phi_in_private_tag_and_nested_item(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    files = mr_study(tmp_path, n=2)
    hide_phi_in_private_sequence(files[0])
    study = ingest(cfg, files)
    request(cfg, tracker, study, "KEEPPRIV", "K001")

    report = AnonymizeAndSend(cfg, tracker).run()
    assert report.failed and not sent_files(outbox), "nothing may be sent"
    t = transfer(tracker, study)
    assert t.transfers_complete == COMPLETE_ERROR and 1 in t.transfer_error
    message = t.transfer_error_message
    assert "(0019,1011)" in message  # the tag ...
    assert "(0019,1010)" in message and "(0018,0024)" in message  # ... and the path into the item
    assert "Nordmann" not in message and "PID-4711" not in message  # never the value
    assert not any(cfg.paths.temp.joinpath("anonymizeAndSend").glob("*"))


def test_deleted_study_and_bad_participant_fail_at_once(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    study = ingest(cfg, mr_study(tmp_path, n=1))
    request(cfg, tracker, study, "ALPHA", "BOGUS")
    shutil.rmtree(cfg.paths.raw_study_dir("1.2.3.4.5"), ignore_errors=True)
    assert tracker.request_transfer("1.2.3.4.5", "ALPHA", "ALPHA009") is not None
    create_transfer_requests(cfg, tracker)

    report = AnonymizeAndSend(cfg, tracker).run()
    assert len(report.failed) == 2 and not sent_files(outbox)
    messages = [
        json.loads(p.read_text())["error"]
        for p in cfg.paths.transfers_fail.glob("*_fail_messages.log")
    ]
    assert DELETED in messages
    assert any("does not match the naming rule" in m for m in messages)


def test_unreachable_destination_is_retried_with_backoff_then_failed(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, config = site
    data = json.loads(Path(config).read_text())
    projects = Path(data["tracker"]["projects_file"])
    projects.write_text(
        PROJECTS.replace(
            "    deid: {mode: keyed}", "    deid: {mode: keyed}\n    destination: down-pacs", 1
        )
    )
    study = ingest(cfg, mr_study(tmp_path, n=1))
    req = request(cfg, tracker, study, "ALPHA", "ALPHA004")
    queue = RequestQueue(cfg.paths)

    first = AnonymizeAndSend(cfg, tracker).run()
    assert first.deferred == [req.name] and req.exists()
    state = queue.state(req)
    assert state.attempts == 1 and state.next_try > 0
    t = transfer(tracker, study)
    assert (
        t.transfers_complete == COMPLETE_ERROR and t.transfer_error == {2} and not t.transfer_date
    )
    assert "attempt 1 of 3" in json.loads(t.transfer_error_message)["error"]

    assert AnonymizeAndSend(cfg, tracker).run().waiting == 1  # not due yet
    AnonymizeAndSend(cfg, tracker).run(now=state.next_try + 1)
    assert queue.state(req).attempts == 2
    last = AnonymizeAndSend(cfg, tracker).run(now=queue.state(req).next_try + 1)
    assert last.failed == [req.name] and not req.exists()
    assert "giving up" in json.loads(transfer(tracker, study).transfer_error_message)["error"]


def _presentation_state(image: Path, out: Path) -> Path:
    src = pydicom.dcmread(image, stop_before_pixels=True)
    ds = Dataset()
    for keyword in (
        "PatientName",
        "PatientID",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
    ):
        setattr(ds, keyword, getattr(src, keyword))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.11.1"
    ds.SOPInstanceUID = src.StudyInstanceUID + ".9.1"
    ds.SeriesInstanceUID = src.StudyInstanceUID + ".9"
    ds.Modality = "PR"
    ds.SeriesNumber = 99
    ds.ContentLabel = "GSPS"
    ds.PresentationCreationDate = src.StudyDate
    ds.PresentationCreationTime = "120000"
    ds.ensure_file_meta()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(out, enforce_file_format=True)
    return out


def _pdf_in_study(image: Path, out: Path) -> Path:
    """An Encapsulated PDF of the same study and patient as ``image`` (its own series)."""
    ds = pydicom.dcmread(image)
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID + ".77"
    ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".77"
    ds.Modality = "DOC"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.DocumentTitle = f"Report for {ds.PatientName}"
    ds.EncapsulatedDocument = f"%PDF-1.4 {ds.PatientName} {ds.PatientID} %%EOF\n".encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    return out


def test_encapsulated_document_dropped_and_named_mapping_kept_home(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    files = mr_study(tmp_path, n=2)
    files.append(_pdf_in_study(files[0], tmp_path / "doc" / "pdf.dcm"))
    study = ingest(cfg, files)
    req = request(cfg, tracker, study, "ALPHA", "ALPHA007")

    assert AnonymizeAndSend(cfg, tracker).run().sent == [req.name]
    out = sent_files(outbox)
    assert len(out) == len(files) - 1  # the images, never a destroyed document
    assert all(pydicom.dcmread(p).Modality != "DOC" for p in out)
    message = transfer(tracker, study).transfer_error_message
    assert "dropped: encapsulated document" in message and "Nordmann" not in message
    # the original -> new UID mapping stays in the gateway, never beside the data
    assert not list(outbox.rglob("mapping.json"))
    [mapping] = list(cfg.paths.mappings.rglob("*.json"))
    assert study in mapping.read_text()
    assert mapping.stat().st_mode & 0o077 == 0


def test_a_study_of_documents_only_fails_once_saying_why(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    [image] = mr_study(tmp_path, n=1)[:1]
    pdf = _pdf_in_study(image, tmp_path / "doc" / "pdf.dcm")
    study = ingest(cfg, [pdf])
    request(cfg, tracker, study, "ALPHA", "ALPHA008")

    report = AnonymizeAndSend(cfg, tracker).run()
    assert report.failed and not sent_files(outbox)
    t = transfer(tracker, study)
    assert t.transfers_complete == COMPLETE_ERROR
    assert "no file of the study can be sent (1 dropped)" in t.transfer_error_message
    assert "Nordmann" not in t.transfer_error_message
