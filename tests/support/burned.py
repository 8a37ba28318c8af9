"""Images with burned-in text for the pixel-cleaning tests and bench/pixels: a noisy
ultrasound-like sector with names, IDs and dates drawn into the pixels (Pillow) at several
sizes, fonts, contrasts and positions, with the ink of each planted string known, so a test can
say which strings were removed and how much of the masked area held identifying text."""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
PATIENT = {
    "PatientName": "NORDMANN^KARI^ELISABETH",
    "PatientID": "PID4711235",
    "AccessionNumber": "ACC98765",
    "PatientBirthDate": "19790228",
    "StudyDate": "20240305",
    "InstitutionName": "Haukeland Sykehus",
}
# identifying strings as devices print them (all from PATIENT's values)
IDENTIFYING = (
    "NORDMANN, KARI",
    "PID4711235",
    "ACC98765",
    "28.02.1979",
    "05/03/2024",
    "2024-03-05",
    "Haukeland",
    "Kari Nordmann",
)
# device text that must stay (allow-listed, not identifying)
KEPT = ("TIS 0.4", "MI 1.1", "C5-1", "15 cm", "Gain 48")


@dataclass
class Planted:
    text: str
    identifying: bool
    ink: np.ndarray  # bool mask (rows, columns) of the pixels drawn


def font(size: int, index: int = 0) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONTS[index % len(FONTS)]
    try:
        return ImageFont.truetype(path, size)
    except OSError:  # a machine without these fonts: Pillow's own
        return ImageFont.load_default(size)


def background(rows: int, cols: int, seed: int) -> np.ndarray:
    """Speckle in a fan-shaped sector on black, as a B-mode ultrasound image looks."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    cx, top = cols / 2, rows * 0.12
    r = np.hypot(x - cx, y - top)
    angle = np.arctan2(x - cx, y - top)
    sector = (r < rows * 0.85) & (np.abs(angle) < 0.6) & (y > top)
    speckle = rng.rayleigh(32, (rows, cols)) * (0.6 + 0.4 * np.sin(r / 9.0) ** 2)
    img = np.where(sector, np.clip(speckle, 0, 170), rng.normal(6, 3, (rows, cols)).clip(0, 30))
    return img.astype(np.uint8)


def draw(
    img: np.ndarray, items: list[tuple[str, bool, tuple[int, int], int, int, int]]
) -> tuple[np.ndarray, list[Planted]]:
    """Draw (text, identifying, (x, y), size, grey level, font index) items into ``img``."""
    out = Image.fromarray(img)
    pen = ImageDraw.Draw(out)
    planted = []
    for text, identifying, (x, y), size, level, face in items:
        f = font(size, face)
        ink = Image.new("L", out.size, 0)
        ImageDraw.Draw(ink).text((x, y), text, fill=255, font=f)
        pen.text((x, y), text, fill=level, font=f)
        planted.append(Planted(text, identifying, np.asarray(ink) > 64))
    return np.asarray(out).copy(), planted


def layout(
    rows: int, cols: int, seed: int, identifying: tuple[str, ...] = IDENTIFYING
) -> list[tuple[str, bool, tuple[int, int], int, int, int]]:
    """Identifying and device strings at several sizes, contrasts and positions."""
    rng = random.Random(seed)
    ident = list(identifying)
    rng.shuffle(ident)
    items = []
    for i in range(4):
        size = rng.choice((11, 13, 16, 20))
        bottom = rows - 2 * (size + 6) - 4
        x, y = ((4, 4), (cols // 2 + 10, 4), (4, bottom), (cols // 2 + 10, bottom))[i]
        level = rng.choice((255, 230, 180))
        items.append((ident[i], True, (x, y), size, level, rng.randrange(3)))
        items.append((rng.choice(KEPT), False, (x, y + size + 6), size, level, rng.randrange(3)))
    return items


def us_dataset(
    frames: list[np.ndarray], *, rgb: bool = False, modality: str = "US", **header: str
) -> Dataset:
    """A US (or other) image of the frames (8-bit grey or RGB), native little endian."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    multi = len(frames) > 1
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1" if multi else "1.2.840.10008.5.1.4.1.1.6.1"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = modality
    ds.Manufacturer, ds.ManufacturerModelName = "ACME", "Sono 5"
    ds.BurnedInAnnotation = "YES"
    for key, value in {**PATIENT, **header}.items():
        setattr(ds, key, value)
    arr = np.stack(frames)
    if rgb:
        arr = np.repeat(arr[..., None], 3, axis=-1)
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = arr.shape[1], arr.shape[2]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if multi:
        ds.NumberOfFrames = len(frames)
        ds.FrameIncrementPointer = 0x00181063
        ds.FrameTime = 40
    ds.PixelData = arr.tobytes()
    ds["PixelData"].VR = "OB"
    return ds


def to_rle(ds: Dataset) -> Dataset:
    ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    return ds


def to_jpeg_lossless(path: Path) -> Path:
    """dcmcjpeg (dcmtk) --encode-lossless-sv1: JPEG lossless, first order prediction."""
    out = path.with_suffix(".jpl.dcm")
    subprocess.run(["dcmcjpeg", "+e1", str(path), str(out)], check=True, capture_output=True)
    return out


def add_overlay(ds: Dataset, text: str = "NORDMANN", group: int = 0x6000) -> np.ndarray:
    """An overlay plane with ``text`` drawn in it; returns its bits as a (rows, cols) mask."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    img = Image.new("1", (cols, rows), 0)
    ImageDraw.Draw(img).text((10, rows // 2), text, fill=1, font=font(16))
    bits = np.asarray(img, dtype=np.uint8)
    packed = np.packbits(bits.ravel(), bitorder="little").tobytes()
    ds.add_new(group << 16 | 0x0010, "US", rows)
    ds.add_new(group << 16 | 0x0011, "US", cols)
    ds.add_new(group << 16 | 0x0040, "CS", "G")
    ds.add_new(group << 16 | 0x0050, "SS", [1, 1])
    ds.add_new(group << 16 | 0x0100, "US", 1)
    ds.add_new(group << 16 | 0x0102, "US", 0)
    ds.add_new(group << 16 | 0x3000, "OW", packed + (b"\0" if len(packed) % 2 else b""))
    return bits.astype(bool)


@dataclass
class Score:
    planted: int = 0  # identifying strings planted
    removed: int = 0  # of which 95 % of the ink is blanked
    kept_planted: int = 0  # device strings planted
    kept_hit: int = 0  # of which some ink is blanked
    masked: int = 0  # pixels blanked
    masked_identifying: int = 0  # of which inside an identifying string's box
    outside_changed: int = 0  # pixels changed outside the blanked boxes (must be 0)

    def add(self, other: Score) -> None:
        for key in vars(self):
            setattr(self, key, getattr(self, key) + getattr(other, key))

    @property
    def recall(self) -> float:
        return self.removed / self.planted if self.planted else 1.0

    @property
    def precision(self) -> float:
        return self.masked_identifying / self.masked if self.masked else 1.0


def score(
    before: np.ndarray,
    after: np.ndarray,
    boxes: list[tuple[int, int, int, int, int]],
    planted: list[list[Planted]],
) -> Score:
    """Compare frames (n, rows, cols[, samples]) before and after cleaning."""
    out = Score()
    n, rows, cols = before.shape[:3]
    for f in range(n):
        mask = np.zeros((rows, cols), bool)
        for frame, x, y, w, h in boxes:
            if frame == f:
                mask[y : y + h, x : x + w] = True
        diff = before[f] != after[f]
        diff = diff.any(axis=-1) if diff.ndim == 3 else diff
        out.outside_changed += int((diff & ~mask).sum())
        held = np.zeros((rows, cols), bool)
        for p in planted[f]:
            ys, xs = np.nonzero(p.ink)
            if p.identifying:
                out.planted += 1
                out.removed += int(mask[p.ink].mean() >= 0.95)
                held[max(0, ys.min() - 3) : ys.max() + 4, max(0, xs.min() - 3) : xs.max() + 4] = (
                    True
                )
            else:
                out.kept_planted += 1
                out.kept_hit += int(mask[p.ink].any())
        out.masked += int(mask.sum())
        out.masked_identifying += int((mask & held).sum())
    return out
