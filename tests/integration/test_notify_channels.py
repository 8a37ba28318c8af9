"""Notifications end to end, in-process: a synthetic study is filed, checked by QC, requested
for project ALPHA and sent by anonymizeAndSend to Orthanc (the research PACS); one
sendNotifications run then delivers its events to every channel against real receivers:
aiosmtpd (STARTTLS, login from the secrets file) gets the mail with the report PDF, a webhook
receiver that answers 500 to every first try gets each event exactly once with a valid
HMAC signature, a FHIR endpoint gets DiagnosticReports that fhir.resources parses, Orthanc
gets the report as an Encapsulated PDF in the de-identified study (same PDF bytes), and the
"none" channel keeps it. No captured payload holds a name, ID, accession or original UID."""

from __future__ import annotations

import base64
import email
import json
import os
import re
import zlib

import pydicom
import pytest

from fionagw.config import load_config
from fionagw.notify.deliver import notify_status, send_notifications
from fionagw.notify.events import read_events
from fionagw.qc.run import check_study
from fionagw.tracking.local import LocalTracker
from fionagw.transfers.anonymize_and_send import AnonymizeAndSend
from support.notify_peers import HttpReceiver, SmtpServer
from support.site import write_config
from support.transfer_site import PATIENT, ingest, mr_study, request

pytestmark = pytest.mark.slow

PROJECTS = """
projects:
  ALPHA:
    participant_id: '^ALPHA[0-9]{3}$'
    destination: research-pacs
    deid: {mode: keyed}
"""
HOOK_SECRET = "hook-shared-secret"


@pytest.fixture(scope="module")
def flow(tmp_path_factory, orthanc_server):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("notify")
    orthanc_server.clear()
    smtp = SmtpServer(tmp / "smtp").start()
    hook = HttpReceiver(HOOK_SECRET, fail_first=True)
    fhir = HttpReceiver(fhir=True)
    projects = tmp / "projects.yml"
    projects.write_text(PROJECTS)
    secrets = tmp / "secrets.json"
    secrets.write_text(
        json.dumps(
            {
                "notifications": {
                    "mail": {"password": smtp.password},
                    "hook": {"secret": HOOK_SECRET},
                }
            }
        )
    )
    os.chmod(secrets, 0o600)
    sent_events = ["send-succeeded"]
    config = write_config(
        tmp,
        tracker={"projects_file": str(projects), "secrets_file": str(secrets)},
        destinations={
            "research-pacs": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": orthanc_server.dicom_port,
                "called_aetitle": orthanc_server.aet,
                "calling_aetitle": "FIONA",
            }
        },
        notifications={
            "retry": {"tries_per_run": 2, "backoff_seconds": 0.05},
            "channels": {
                "mail": {
                    "type": "email",
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "tls": "starttls",
                    "ca_file": str(smtp.ca_file),
                    "from": "fiona@example.org",
                    "to": ["pi@example.org"],
                    "login": smtp.user,
                },
                "hook": {"type": "webhook", "url": hook.url + "/events"},
                "ehr": {"type": "fhir", "url": fhir.url + "/fhir"},
                "pacs": {"type": "dicom", "destination": "research-pacs"},
                "keep": {"type": "none"},
            },
            "subscriptions": [
                {"events": ["*"], "channel": "hook"},
                {"events": sent_events, "project": "ALPHA", "channel": "mail"},
                {"events": sent_events, "channel": "ehr"},
                {"events": sent_events, "channel": "pacs"},
                {"events": sent_events, "channel": "keep"},
                {"events": ["send-failed"], "project": "OTHER", "channel": "mail"},
            ],
        },
    )
    cfg = load_config(config)
    cfg.paths.create()
    tracker = LocalTracker(cfg.paths.tracker_db, projects)
    files = mr_study(tmp, n=2)
    study = ingest(cfg, files)
    check_study(cfg, study)
    request(cfg, tracker, study, "ALPHA", "ALPHA001", "")
    assert len(AnonymizeAndSend(cfg, tracker, processes=1).run().sent) == 1
    first = send_notifications(cfg, tracker)
    second = send_notifications(cfg, tracker)  # the report-delivered events of the first
    third = send_notifications(cfg, tracker)
    yield {
        "cfg": cfg,
        "tracker": tracker,
        "study": study,
        "files": files,
        "smtp": smtp,
        "hook": hook,
        "fhir": fhir,
        "orthanc": orthanc_server,
        "first": first,
        "second": second,
        "third": third,
    }
    tracker.close()
    smtp.stop()
    hook.close()
    fhir.close()


def _deid_study(flow) -> str:  # type: ignore[no-untyped-def]
    [t] = flow["tracker"].transfers(study_uid=flow["study"])
    return t.transfer_mapped_uid


def test_pipeline_events_are_logged(flow) -> None:  # type: ignore[no-untyped-def]
    types = [e["type"] for e in read_events(flow["cfg"])]
    for kind in ("qc-passed", "transfer-requested", "send-succeeded", "delivery-verified"):
        assert kind in types, types
    sent = [e for e in read_events(flow["cfg"]) if e["type"] == "send-succeeded"][0]
    assert sent["project"] == "ALPHA" and sent["pseudonym"] == "ALPHA001"
    assert oct(os.stat(flow["cfg"].paths.notify / "events.jsonl").st_mode & 0o777) == "0o640"


def test_webhook_gets_each_event_once_with_a_valid_signature(flow) -> None:  # type: ignore[no-untyped-def]
    hook = flow["hook"]
    events = list(read_events(flow["cfg"]))
    assert hook.bad_signatures == 0
    assert set(hook.accepted) == {e["id"] for e in events}
    assert all(n == 1 for n in hook.accepted.values()), hook.accepted
    assert len(hook.bodies) == 2 * len(events)  # every first try answered 500, then accepted
    # the report went by mail, FHIR, DICOM and "none": four report-delivered events, which
    # the second run delivered to the hook ("*") without emitting any more; the third: nothing
    reported = [e for e in events if e["type"] == "report-delivered"]
    assert sorted(e["details"]["channel"] for e in reported) == ["ehr", "keep", "mail", "pacs"]
    assert events[-4:] == reported and flow["second"].counts["delivered"] == 4
    assert flow["third"].counts["delivered"] == 0
    sent = [e for e in hook.events() if e["type"] == "send-succeeded"][0]
    assert sent["study_uid"] == _deid_study(flow) and sent["pseudonym"] == "ALPHA001"
    assert "ref" not in sent


def test_mail_with_the_report_attached(flow) -> None:  # type: ignore[no-untyped-def]
    [raw] = flow["smtp"].messages
    msg = email.message_from_bytes(raw)
    assert "send-succeeded" in msg["Subject"] and "ALPHA001" in msg["Subject"]
    [pdf] = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
    assert pdf.get_payload(decode=True).startswith(b"%PDF")


def test_fhir_diagnostic_report(flow) -> None:  # type: ignore[no-untyped-def]
    [report] = flow["fhir"].resources
    assert report.status == "final"
    assert report.subject.identifier.value == "ALPHA001"
    assert report.issued is not None
    [form] = report.presentedForm
    assert form.contentType == "application/pdf"
    assert form.data.startswith(b"%PDF")  # fhir.resources decodes the base64
    assert flow["fhir"].conditions[0].startswith("identifier=urn:fionagw:event|")


def test_orthanc_has_the_report_in_the_deidentified_study(flow) -> None:  # type: ignore[no-untyped-def]
    orthanc = flow["orthanc"]
    deid = _deid_study(flow)
    pdfs = []
    for inst in orthanc.instances():
        tags = _tags(orthanc, inst)
        if tags.get("SOPClassUID") == "1.2.840.10008.5.1.4.1.1.104.1":
            pdfs.append((inst, tags))
    [(inst, tags)] = pdfs
    assert tags["StudyInstanceUID"] == deid and tags["PatientID"] == "ALPHA001"
    image = [i for i in orthanc.instances() if i != inst][0]
    assert _tags(orthanc, image)["PatientID"] == "ALPHA001"
    assert tags["SeriesInstanceUID"] != _tags(orthanc, image)["SeriesInstanceUID"]
    ds = pydicom.dcmread(__import__("io").BytesIO(orthanc.instance_file(inst)))
    kept = list((flow["cfg"].paths.notify / "kept" / "keep").glob("*.pdf"))
    [kept_pdf] = kept
    pdf = bytes(ds.EncapsulatedDocument)[: int(ds.EncapsulatedDocumentLength)]
    assert pdf == kept_pdf.read_bytes()
    mail_pdf = [
        p.get_payload(decode=True)
        for p in email.message_from_bytes(flow["smtp"].messages[0]).walk()
        if p.get_content_type() == "application/pdf"
    ][0]
    assert mail_pdf == pdf
    # the study date/time as sent (shifted), the sent series and instances referenced
    images = [
        pydicom.dcmread(__import__("io").BytesIO(orthanc.instance_file(i)))
        for i in orthanc.instances()
        if i != inst
    ]
    original = pydicom.dcmread(flow["files"][0], stop_before_pixels=True)
    assert ds.StudyDate and ds.StudyDate == images[0].StudyDate != original.StudyDate
    assert ds.StudyTime == images[0].StudyTime
    refs = {r.SeriesInstanceUID: r for r in ds.ReferencedSeriesSequence}
    assert set(refs) == {i.SeriesInstanceUID for i in images}
    sources = {
        (s.ReferencedSOPClassUID, s.ReferencedSOPInstanceUID) for s in ds.SourceInstanceSequence
    }
    assert sources == {(i.SOPClassUID, i.SOPInstanceUID) for i in images}
    assert sources == {
        (r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID)
        for item in refs.values()
        for r in item.ReferencedInstanceSequence
    }


def _tags(orthanc, inst: str) -> dict:  # type: ignore[no-untyped-def]
    return orthanc.get(f"/instances/{inst}/simplified-tags")


def _pdf_text(data: bytes) -> bytes:
    """The PDF with its streams decoded (reportlab writes ASCII85 over Flate)."""
    out = [data]
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        chunk = m.group(1).strip()
        try:
            if chunk.endswith(b"~>"):
                chunk = base64.a85decode(chunk[:-2])
            out.append(zlib.decompress(chunk))
        except (ValueError, zlib.error):
            pass
    return b"\n".join(out)


def test_no_payload_carries_identifying_values(flow) -> None:  # type: ignore[no-untyped-def]
    values = {PATIENT["patient_id"], PATIENT["accession"], flow["study"]}
    values |= set(PATIENT["patient_name"].split("^"))
    for f in flow["files"]:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        values |= {ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.StudyInstanceUID}
    payloads: list[bytes] = list(flow["hook"].bodies) + list(flow["fhir"].bodies)
    payloads += flow["smtp"].messages
    for doc in flow["fhir"].resources:
        payloads += [_pdf_text(f.data) for f in doc.presentedForm or []]
    for raw in flow["smtp"].messages:
        for part in email.message_from_bytes(raw).walk():
            if part.get_content_type() == "application/pdf":
                payloads.append(_pdf_text(part.get_payload(decode=True)))
    for inst in flow["orthanc"].instances():
        payloads.append(_pdf_text(flow["orthanc"].instance_file(inst)))
    for kept in (flow["cfg"].paths.notify / "kept").rglob("*"):
        if kept.is_file():
            payloads.append(_pdf_text(kept.read_bytes()))
    assert len(payloads) > 10
    # the search reads the reports' text (which would show any value the report kept)
    pdf_texts = [p for p in payloads if b"ReportLab" in p]
    assert len(pdf_texts) >= 3 and all(b"(QC for ALPHA: passed)" in p for p in pdf_texts)
    for value in values:
        needle = value.encode()
        hits = [i for i, p in enumerate(payloads) if needle in p]
        assert not hits, f"{value!r} found in payloads {hits}"


def test_status_shows_every_channel_delivered(flow) -> None:  # type: ignore[no-untyped-def]
    by_name = {s.name: s for s in notify_status(flow["cfg"])}
    assert by_name["mail"].counts == {"delivered": 1}
    assert by_name["pacs"].counts == {"delivered": 1}
    assert by_name["hook"].counts["delivered"] == len(list(read_events(flow["cfg"])))
    assert not any(s.failures for s in by_name.values())
