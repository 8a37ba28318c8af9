"""The channels: e-mail, webhook, FHIR DiagnosticReport, DICOM encapsulated PDF, none.

Each ``deliver_<type>(ctx, channel, out)`` delivers one event or raises DeliveryError (worth
another try) or Permanent (no try will help: a missing secret, a refused request). A channel
that has nothing to deliver for an event (no pseudonymized study for a DICOM object) returns
a reason, and the delivery is recorded as skipped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import tempfile
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests

from fionagw.config import ConfigError, SiteConfig
from fionagw.config.notifications import Channel
from fionagw.config.secrets import load_secrets
from fionagw.notify.payload import Outgoing
from fionagw.send.base import one_line

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
UID_ROOT = "1.2.826.0.1.3680043.10.543."  # pydicom's generate_uid default root is fine too
EVENT_SYSTEM = "urn:fionagw:event"


class DeliveryError(Exception):
    """This try failed; a later one may succeed (str(): one line). A missing secret or a
    refused login is one too: the operator fixes it and the next runs deliver."""


class Permanent(DeliveryError):
    """No try will succeed until someone changes something."""


class Context:
    """What the channels share during one run: config, secrets, HTTP session."""

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        self._secrets: dict[str, Any] | None = None
        self.session = requests.Session()

    def secret(self, channel: Channel, key: str) -> str:
        path = self.cfg.tracker.secrets_file
        if path is None:
            raise DeliveryError(f"channel {channel.name}: {key} needs tracker.secrets_file")
        if self._secrets is None:
            try:
                self._secrets = load_secrets(path)
            except ConfigError as exc:
                raise DeliveryError(str(exc)) from None
        value = (self._secrets.get("notifications") or {}).get(channel.name, {})
        value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value:
            raise DeliveryError(f"{path}: notifications.{channel.name}.{key}: missing")
        return value

    def close(self) -> None:
        self.session.close()


def _verify(channel: Channel) -> str | bool:
    return channel.get("ca_file") or True


# -- e-mail --------------------------------------------------------------------------------


def deliver_email(ctx: Context, channel: Channel, out: Outgoing) -> str:
    p = out.payload
    msg = EmailMessage()
    msg["From"] = channel.get("from")
    msg["To"] = ", ".join(channel.get("to"))
    msg["Subject"] = " ".join(x for x in ("fionagw:", p["type"], p["project"], p["pseudonym"]) if x)
    msg["Message-ID"] = f"<{p['id']}@fionagw>"  # the idempotency key: one event, one message id
    msg.set_content(out.text())
    if out.pdf:
        name = f"report-{p['pseudonym'] or p['id']}.pdf"
        msg.add_attachment(out.pdf, maintype="application", subtype="pdf", filename=name)
    if out.csv:
        msg.add_attachment(out.csv[1], maintype="text", subtype="csv", filename=out.csv[0])
    context = ssl.create_default_context(cafile=channel.get("ca_file") or None)
    host, port, timeout = channel.get("host"), channel.get("port"), channel.get("timeout")
    try:
        if channel.get("tls") == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if channel.get("tls") == "starttls":
                smtp.starttls(context=context)
            if channel.get("login"):
                smtp.login(channel.get("login"), ctx.secret(channel, "password"))
            smtp.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"{host}:{port}: login refused ({exc.smtp_code})") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"{host}:{port}: {one_line(exc)}") from None
    return ""


# -- webhook -------------------------------------------------------------------------------


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def deliver_webhook(ctx: Context, channel: Channel, out: Outgoing) -> str:
    body = json.dumps(out.payload, sort_keys=True).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": out.id,
        "X-Fiona-Event": out.payload["type"],
        channel.get("signature_header"): signature(ctx.secret(channel, "secret"), body),
    }
    try:
        r = ctx.session.request(
            channel.get("method"),
            channel.get("url"),
            data=body,
            headers=headers,
            timeout=channel.get("timeout"),
            verify=_verify(channel),
        )
    except requests.RequestException as exc:
        raise DeliveryError(f"{channel.get('url')}: {one_line(exc)}") from None
    _check_status(r, channel.get("url"))
    return ""


def _check_status(r: requests.Response, url: str) -> None:
    if 200 <= r.status_code < 300:
        return
    text = f"{url}: HTTP {r.status_code} {one_line(r.text, 120)}"
    if r.status_code in (400, 404, 405, 422):  # the same request will be refused again
        raise Permanent(text)
    raise DeliveryError(text)


# -- FHIR ----------------------------------------------------------------------------------


def diagnostic_report(channel: Channel, out: Outgoing) -> dict[str, Any]:
    """A DiagnosticReport validated by fhir.resources (ValueError when it is not valid)."""
    from fhir.resources.diagnosticreport import DiagnosticReport

    p = out.payload
    identifiers = [{"system": EVENT_SYSTEM, "value": p["id"]}]
    if p["study_uid"]:
        identifiers.append({"system": "urn:dicom:uid", "value": f"urn:oid:{p['study_uid']}"})
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "identifier": identifiers,
        "status": "final",
        "code": {"text": channel.get("code")},
        "issued": datetime.fromisoformat(p["time"]).isoformat(),
        "conclusion": out.text(),
    }
    if p["pseudonym"]:
        system = (
            f"urn:fionagw:project:{p['project']}" if p["project"] else "urn:fionagw:participant"
        )
        resource["subject"] = {
            "identifier": {"system": system, "value": p["pseudonym"]},
            "display": p["pseudonym"],
        }
    if out.pdf:
        resource["presentedForm"] = [
            {
                "contentType": "application/pdf",
                "data": base64.b64encode(out.pdf).decode("ascii"),
                "title": "Study report",
            }
        ]
    return json.loads(DiagnosticReport.model_validate(resource).model_dump_json())


def deliver_fhir(ctx: Context, channel: Channel, out: Outgoing) -> str:
    resource = diagnostic_report(channel, out)
    url = f"{channel.get('url')}/DiagnosticReport"
    headers = {
        "Content-Type": "application/fhir+json",
        "Accept": "application/fhir+json",
        # conditional create: a second delivery of the same event creates nothing
        "If-None-Exist": f"identifier={EVENT_SYSTEM}|{out.id}",
    }
    try:
        r = ctx.session.post(
            url,
            data=json.dumps(resource).encode("utf-8"),
            headers=headers,
            timeout=channel.get("timeout"),
            verify=_verify(channel),
        )
    except requests.RequestException as exc:
        raise DeliveryError(f"{url}: {one_line(exc)}") from None
    _check_status(r, url)
    return ""


# -- DICOM encapsulated PDF ----------------------------------------------------------------


def encapsulated_pdf(out: Outgoing, channel_name: str) -> Any:
    """An Encapsulated PDF Storage object in the study's de-identified identity: the
    de-identified StudyInstanceUID, the pseudonym as PatientName/PatientID (as the
    de-identification stamps them), a new series; its UIDs are derived from the event and
    the channel, so a second delivery replaces the first instead of adding a copy."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    p = out.payload
    now = datetime.now()
    series = generate_uid(entropy_srcs=[p["id"], channel_name, "series"])
    instance = generate_uid(entropy_srcs=[p["id"], channel_name, "instance"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    meta.MediaStorageSOPInstanceUID = instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = ENCAPSULATED_PDF, instance
    ds.PatientName = ds.PatientID = p["pseudonym"]
    ds.PatientBirthDate = ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = p["study_uid"], series
    sent = out.sent
    ds.StudyDate = sent.study_date if sent else ""  # as sent: shifted by the project's settings
    ds.StudyTime = sent.study_time if sent else ""
    ds.AccessionNumber = ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "DOC", 9901, 1
    ds.SeriesDescription = ds.DocumentTitle = "Study report"
    ds.Manufacturer = "fionagw"
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.ConversionType = "WSD"
    ds.BurnedInAnnotation = "NO"
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    if sent and sent.series:
        # PS3.3 C.24.2 Source Instance Sequence: the instances the report was derived from,
        # and a Referenced Series Sequence (standard extended) naming the sent series
        ds.SourceInstanceSequence = [
            _ref(sop_class, sop) for refs in sent.series.values() for sop_class, sop in refs
        ]
        ds.ReferencedSeriesSequence = []
        for uid, refs in sent.series.items():
            item = Dataset()
            item.SeriesInstanceUID = uid
            item.ReferencedInstanceSequence = [_ref(c, s) for c, s in refs]
            ds.ReferencedSeriesSequence.append(item)
    pdf = out.pdf or b""
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    return ds


def _ref(sop_class: str, sop: str) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop
    return item


def deliver_dicom(ctx: Context, channel: Channel, out: Outgoing) -> str:
    from fionagw.send.base import SendContext

    p = out.payload
    if not p["study_uid"] or not p["pseudonym"]:
        return "no de-identified study for this event (no project or participant)"
    if not out.pdf:
        return "the study has no report"
    settings = ctx.cfg.destinations.get(channel.get("destination"))
    if settings is None:
        raise Permanent(f"channel {channel.name}: no destination {channel.get('destination')!r}")
    ds = encapsulated_pdf(out, channel.name)
    with tempfile.TemporaryDirectory(prefix="notify-") as tmp:
        path = Path(tmp) / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        sent = settings.destination().send_study(
            [path], SendContext(p["project"], p["pseudonym"], "", p["study_uid"])
        )
    if not sent.ok:
        reasons = [sent.error] + [why for _, why in sent.failed]
        raise DeliveryError(f"{settings.name}: {one_line('; '.join(r for r in reasons if r))}")
    return ""


# -- none ----------------------------------------------------------------------------------


def deliver_none(ctx: Context, channel: Channel, out: Outgoing) -> str:
    """Kept for download: DATADIR/notify/kept/<channel>/<event id>.json (and .pdf)."""
    from fionagw.ops.atomic import write_bytes_atomic
    from fionagw.ops.perms import make_dirs

    folder = ctx.cfg.paths.notify / "kept" / channel.name
    make_dirs(folder)
    if out.pdf:
        write_bytes_atomic(folder / f"{out.id}.pdf", out.pdf)
    if out.csv:
        write_bytes_atomic(folder / f"{out.id}.csv", out.csv[1])
    write_bytes_atomic(
        folder / f"{out.id}.json", json.dumps(out.payload, indent=1, sort_keys=True).encode()
    )
    return ""


DELIVER = {
    "email": deliver_email,
    "webhook": deliver_webhook,
    "fhir": deliver_fhir,
    "dicom": deliver_dicom,
    "none": deliver_none,
}
WANTS_PDF = {"email", "fhir", "dicom", "none"}
