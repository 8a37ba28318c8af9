"""anonymizeAndSend cleans a CHECKBURNEDINFO series (deid/pixels.py) and sends it with the
rest of the study to the folder destination: no identifying text left in the pixels,
BurnedInAnnotation NO, FIONA's transfer_error___3 set; a series matching the project's
exclusion goes with its pixels as they are."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate

from fionagw.deid import pixels
from fionagw.tracking.records import COMPLETE_OK, ERROR_ANONYMIZATION, PIXELS_ANONYMIZED
from fionagw.transfers.anonymize_and_send import AnonymizeAndSend
from support import burned
from support.transfer_site import ingest, mr_study, request, sent_files, transfer_site

pytestmark = pytest.mark.slow  # Tesseract on two frames, twice

STRINGS = ("NORDMANN, KARI", "PID-4711", "ACC-99812", "02.01.2024")


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from transfer_site(tmp_path)


def _us_series(
    tmp: Path, mr: pydicom.Dataset, description: str, seeds: tuple[int, ...]
) -> list[Path]:
    series = pydicom.uid.generate_uid()
    out = []
    for i, seed in enumerate(seeds):
        img, _ = burned.draw(
            burned.background(256, 320, seed), burned.layout(256, 320, seed, STRINGS)
        )
        ds = burned.us_dataset(
            [img],
            StudyInstanceUID=mr.StudyInstanceUID,
            SeriesInstanceUID=series,
            PatientName=str(mr.PatientName),
            PatientID=mr.PatientID,
            AccessionNumber=mr.AccessionNumber,
            PatientBirthDate=mr.PatientBirthDate,
            StudyDate=mr.StudyDate,
            InstitutionName=str(mr.get("InstitutionName", "")),
        )
        ds.SeriesDescription, ds.InstanceNumber = description, i + 1
        path = tmp / f"{description.replace(' ', '_')}{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def test_burned_in_series_is_cleaned_and_sent(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    files = mr_study(tmp_path, n=1)
    mr = pydicom.dcmread(files[0])
    us = _us_series(tmp_path, mr, "Abdomen US", (11,))
    kept = _us_series(tmp_path, mr, "KEEP as acquired", (13,))
    study = ingest(cfg, [*files, *us, *kept])
    request(cfg, tracker, study, "PIXELS", "P001")

    report = AnonymizeAndSend(cfg, tracker, processes=2).run()
    assert report.sent and not report.failed

    out = [pydicom.dcmread(p) for p in sent_files(outbox)]
    sent_us = [ds for ds in out if ds.Modality == "US"]
    assert len(out) == len(files) + 2 and len(sent_us) == 2
    cleaned = [ds for ds in sent_us if ds.SeriesDescription != "KEEP as acquired"]
    assert len(cleaned) == 1
    for ds in cleaned:
        assert ds.BurnedInAnnotation == "NO" and ds.PatientID == "P001"
        frames, pi = pixels._frames(ds)
        text = " ".join(w.text for w in pixels.ocr_words(pixels._grey(frames[0], ds, pi)))
        flat = re.sub(r"[^0-9a-z]", "", text.lower())
        for s in STRINGS:
            assert re.sub(r"[^0-9a-z]", "", s.lower()) not in flat, "identifying text sent"
        assert any(str(m).startswith("burned-in text:") for m in ds.DeidentificationMethod)
    # the excluded series: its pixels as they came (and its flag as it was)
    [excluded] = [ds for ds in sent_us if ds.SeriesDescription == "KEEP as acquired"]
    assert excluded.BurnedInAnnotation == "YES"
    assert np.array_equal(excluded.pixel_array, pydicom.dcmread(kept[0]).pixel_array)

    [t] = tracker.transfers(study)
    assert t.transfers_complete == COMPLETE_OK and t.transfer_error == {PIXELS_ANONYMIZED}
    message = json.loads(t.transfer_error_message)
    summary = " ".join(message["rewritepixel_command"])
    assert "1 file(s) cleaned" in summary and "exclusion on 0008,103E" in summary
    assert "Nordmann" not in t.transfer_error_message and "PID-4711" not in t.transfer_error_message


def test_a_file_that_cannot_be_cleaned_is_held_back_alone(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    files = mr_study(tmp_path, n=1)
    mr = pydicom.dcmread(files[0])
    good, bad = _us_series(tmp_path, mr, "Abdomen US", (21, 22))
    ds = pydicom.dcmread(bad)  # its pixels cannot be decoded: never sent as they are
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3 not a JPEG stream \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGLosslessSV1
    ds.save_as(bad, enforce_file_format=True)
    study = ingest(cfg, [*files, good, bad])
    request(cfg, tracker, study, "PIXELS", "P002")

    report = AnonymizeAndSend(cfg, tracker, processes=1).run()
    assert report.failed  # a held-back image makes the transfer an error to look at ...
    out = [pydicom.dcmread(p) for p in sent_files(outbox)]
    us = [d for d in out if d.Modality == "US"]
    assert len(out) == len(files) + 1 and len(us) == 1  # ... while the rest went
    assert us[0].BurnedInAnnotation == "NO"
    [t] = tracker.transfers(study)
    assert t.transfer_error == {ERROR_ANONYMIZATION, PIXELS_ANONYMIZED}
    message = json.loads(t.transfer_error_message)
    [held] = message["held_back"]
    assert "1 of 2 image(s) held back: burned-in text: pixel data cannot be decoded" in held
    assert "Nordmann" not in t.transfer_error_message
