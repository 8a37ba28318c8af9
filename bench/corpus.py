"""The benchmarks' one corpus: ``studies`` MR sessions (7 series each, three vendors) of
``images // studies`` images of ~128 KiB, one patient each, with identifying values in names,
IDs, dates, sequences and a private block (so bench/deid has something to remove and
bench/ingest receives realistic headers). Cached in its folder between runs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic studies of the test support package

from pydicom.dataset import Dataset  # noqa: E402

from support import synth  # noqa: E402

VENDORS = ("SIEMENS", "GE", "PHILIPS", "SIEMENS")
_SURNAMES = ("Nordmann", "Haugland", "Kristiansen", "Johannessen")
_GIVEN = ("Kari", "Ola", "Ingrid", "Sverre")


def _phi_extra(i: int, patient_id: str, accession: str, name: str) -> dict[int, tuple]:
    """Identifying elements beyond synth's own: staff, address, phone, other IDs, a request
    sequence, a referenced-study sequence and a private block that copies name and ID."""
    request = Dataset()
    request.AccessionNumber = accession
    request.RequestedProcedureID = f"RP{patient_id}"
    request.ScheduledProcedureStepID = f"SPS{patient_id}"
    request.RequestedProcedureDescription = f"MR brain for {name.split('^')[0]}"
    other = Dataset()
    other.PatientID = f"NHN{i:02d}0{patient_id[-3:]}"
    other.IssuerOfPatientID = "Hospital RIS"
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ref.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.9.7133.{i}.77"
    return {
        0x00080081: ("ST", "Haukelandsveien 22, 5021 Bergen"),
        0x00080090: ("PN", "Hansen^Per^^Dr."),
        0x00081050: ("PN", "Larsen^Mette"),
        0x00081060: ("PN", "Berg^Anne"),
        0x00081110: ("SQ", [ref]),
        0x00100021: ("LO", "Helse Vest"),
        0x00101000: ("LO", f"NHN{i:02d}0{patient_id[-3:]}"),
        0x00101002: ("SQ", [other]),
        0x00101040: ("LO", f"Storgata {10 + i}, 5003 Bergen"),
        0x00102154: ("SH", f"+47 5597{i:04d}"),
        0x00104000: ("LT", f"Patient {name.split('^')[0]}, claustrophobic"),
        0x00321032: ("PN", "Olsen^Kjell"),
        0x00400244: ("DA", "20240102"),
        0x00400245: ("TM", "101000"),
        0x00400275: ("SQ", [request]),
        0x00110010: ("LO", "BENCH HOSPITAL RIS"),
        0x00111001: ("LO", name),
        0x00111002: ("LO", patient_id),
        0x00111003: ("DA", "19800101"),
    }


def make_corpus(folder: Path, images: int, studies: int) -> list[Path]:
    """``studies`` MR sessions of ``images // studies`` images of ~128 KiB (7 series each),
    one patient each; cached in ``folder`` between runs. Returns the study folders."""
    stamp = folder / f".complete-{images}-{studies}"
    if stamp.exists():
        return sorted(p for p in folder.iterdir() if p.is_dir())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    per_study = images // studies
    dirs = []
    for i in range(studies):
        d = folder / f"study{i}"
        vendor = VENDORS[i % len(VENDORS)]
        patient_id, accession = f"MRN{4711 + i:06d}", f"ACC{2024000 + i}"
        name = f"{_SURNAMES[i % 4]}^{_GIVEN[i % 4]}^Marie"
        extra = _phi_extra(i, patient_id, accession, name)
        series = synth.standard_mr_series(vendor, 1)
        k = len(series)
        specs = [
            synth.with_changes(
                s,
                n_images=per_study // k + (1 if j < per_study % k else 0),
                extra={**s.extra, **extra},
            )
            for j, s in enumerate(series)
        ]
        synth.write_study(
            d,
            vendor=vendor,
            series=specs,
            pixel_bytes=128 * 1024,
            seed=100 + i,
            patient_id=patient_id,
            patient_name=name,
            accession=accession,
            study_description=f"MR Brain {name.split('^')[0]}",
        )
        dirs.append(d)
    stamp.touch()
    return dirs


def warm(folder: Path) -> int:
    """Read every corpus file once (page cache warm for both sides); bytes read."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
    return total
