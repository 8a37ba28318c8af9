"""Burned-in text (deid/pixels.py) on generated ultrasound-like images with names, IDs and
dates drawn into the pixels (tests/support/burned.py), in native, RLE and JPEG lossless,
single and multi-frame, grey and RGB, plus an overlay: after cleaning, the OCR finds none of
the identifying strings, the pixels outside the masked boxes are unchanged, and the recall
and precision over the whole set are measured. A clean MR image keeps its pixels byte for
byte; pydicom's own secondary-capture and overlay files are run through as they are."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from fionagw.deid import pixels
from fionagw.deid.pixels import PixelSettings, Terms, parse_pixel_settings
from support import burned

pytestmark = pytest.mark.slow  # Tesseract: about a second per frame and pass

SETTINGS = PixelSettings()
# (name, rows, columns, seeds (one per frame), syntax, rgb)
CASES = [
    ("native-256x320", 256, 320, (1,), "native", False),
    ("rle-256x320", 256, 320, (3,), "rle", False),
    ("jpeg-lossless-480x640", 480, 640, (2,), "jpl", False),
    ("rle-multiframe-256x320", 256, 320, (5, 6), "rle", False),
]
SCORES: dict[str, burned.Score] = {}


def _flat(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _ocr_text(ds: Dataset) -> str:
    """Everything the OCR reads in every frame, flattened (for "is the string still there")."""
    frames, pi = pixels._frames(ds)
    words = [w.text for f in frames for w in pixels.ocr_words(pixels._grey(f, ds, pi))]
    return _flat(" ".join(words))


def _write(tmp: Path, name: str, ds: Dataset, syntax: str) -> Path:
    if syntax == "rle":
        burned.to_rle(ds)
    path = tmp / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return burned.to_jpeg_lossless(path) if syntax == "jpl" else path


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Every case made, written in its syntax, cleaned in place: name -> (before, after ds,
    result, planted, original syntax)."""
    tmp = tmp_path_factory.mktemp("pixels")
    out = {}
    for name, rows, cols, seeds, syntax, rgb in CASES:
        frames, planted = [], []
        for seed in seeds:
            img, items = burned.draw(
                burned.background(rows, cols, seed), burned.layout(rows, cols, seed)
            )
            frames.append(img)
            planted.append(items)
        path = _write(tmp, name, burned.us_dataset(frames, rgb=rgb), syntax)
        original = pydicom.dcmread(path)
        spp = int(original.SamplesPerPixel)
        before = original.pixel_array.reshape(len(frames), rows, cols, spp).copy()
        result = pixels.clean_file(path, Terms.build([original]), SETTINGS)
        out[name] = (before, pydicom.dcmread(path), result, planted, original)
    return out


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_identifying_text_is_gone_and_nothing_else_changed(
    cleaned: dict[str, tuple], case: str
) -> None:
    before, after, result, planted, original = cleaned[case]
    assert result.verified and not result.reason and result.regions >= 4
    assert after.BurnedInAnnotation == "NO"
    assert after.SOPInstanceUID == original.SOPInstanceUID
    arr = after.pixel_array.reshape(before.shape)
    score = burned.score(before, arr, result.boxes, planted)
    SCORES[case] = score
    assert score.outside_changed == 0, "pixels changed outside the masked boxes"
    assert score.removed == score.planted, f"{score.planted - score.removed} string(s) left"
    text = _ocr_text(after)
    left = [s for s in burned.IDENTIFYING if len(_flat(s)) >= 5 and _flat(s) in text]
    assert not left, f"the OCR still reads {len(left)} identifying string(s)"
    # the de-identification record: count and method, never the text
    method = after.DeidentificationMethod
    method = [method] if isinstance(method, str) else list(method)
    assert any(m.startswith(f"burned-in text: {result.regions} region(s)") for m in method)
    assert "113101" in [c.CodeValue for c in after.DeidentificationMethodCodeSequence]
    assert "NORDMANN" not in json.dumps(method).upper()


def test_syntaxes_kept_or_made_explicit_little_endian(cleaned: dict[str, tuple]) -> None:
    syntax = {k: v[1].file_meta.TransferSyntaxUID for k, v in cleaned.items()}
    assert syntax["native-256x320"] == pydicom.uid.ExplicitVRLittleEndian
    assert syntax["rle-256x320"] == syntax["rle-multiframe-256x320"] == pydicom.uid.RLELossless
    jpl = cleaned["jpeg-lossless-480x640"]
    assert jpl[4].file_meta.TransferSyntaxUID == pydicom.uid.JPEGLosslessSV1
    assert syntax["jpeg-lossless-480x640"] == pydicom.uid.ExplicitVRLittleEndian
    assert "LossyImageCompression" not in jpl[1]  # lossless history stays lossless
    multi = cleaned["rle-multiframe-256x320"][1]
    assert multi.NumberOfFrames == 2 and multi.pixel_array.shape == (2, 256, 320)


def test_recall_and_precision_over_the_set(cleaned: dict[str, tuple]) -> None:
    total = burned.Score()
    for case in cleaned:
        before, after, result, planted, _ = cleaned[case]
        arr = after.pixel_array.reshape(before.shape)
        total.add(burned.score(before, arr, result.boxes, planted))
    print(
        f"\nburned-in text: {total.planted} identifying strings planted, recall "
        f"{total.recall:.3f}, precision {total.precision:.3f} (masked area on identifying text), "
        f"{total.kept_hit} of {total.kept_planted} device strings touched"
    )
    assert total.recall == 1.0
    assert total.precision >= 0.6
    assert total.kept_hit <= total.kept_planted // 4


def test_clean_mr_image_passes_bit_identical() -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    data = ds.PixelData
    ds.PatientName = "NORDMANN^KARI"
    result = pixels.clean_dataset(ds, Terms.build([ds]), SETTINGS)
    assert result.verified and result.regions == 0 and not result.changed
    assert ds.PixelData is data or ds.PixelData == data


def test_overlay_removed_pixels_kept(tmp_path: Path) -> None:
    img = burned.background(128, 160, 9)
    ds = burned.us_dataset([img])
    burned.add_overlay(ds, "NORDMANN")
    result = pixels.clean_dataset(ds, Terms.build([ds]), SETTINGS)
    assert result.overlays == 1 and result.verified
    assert not [t for t in ds.keys() if t >> 16 == 0x6000]
    assert np.array_equal(ds.pixel_array, img)


def test_mode_all_and_fixed_regions() -> None:
    img, planted = burned.draw(
        np.full((100, 240), 20, np.uint8),
        [("Sono Scanner", False, (10, 10), 20, 255, 0), ("15 cm", False, (10, 50), 20, 255, 0)],
    )
    ds = burned.us_dataset([img])
    settings = parse_pixel_settings(
        {
            "mode": "all",
            "regions": [{"manufacturer": "^acme", "rows": 100, "boxes": [[220, 80, 20, 20]]}],
        }
    )
    result = pixels.clean_dataset(ds, Terms.build([ds]), settings)
    arr = ds.pixel_array
    assert result.verified and result.fixed == 1
    assert not arr[80:100, 220:240].any()  # the fixed region
    scanner, cm = (p.ink for p in planted)
    assert (arr[scanner] == 0).all()  # any text goes in mode "all" ...
    assert (arr[cm] == 255).any()  # ... but the allow-list's units stay


@pytest.mark.parametrize(
    "name",
    ["SC_rgb_jpeg_dcmtk.dcm", "examples_overlay.dcm"],
)
def test_pydicom_files_run_through(name: str, tmp_path: Path) -> None:
    """Files nobody here wrote: read, cleaned, written, readable again."""
    src = Path(get_testdata_file(name))
    path = tmp_path / name
    path.write_bytes(src.read_bytes())
    original = pydicom.dcmread(path)
    result = pixels.clean_file(path, Terms.build([original]), SETTINGS)
    after = pydicom.dcmread(path)
    print(
        f"\n{name}: {result.frames} frame(s), {result.regions} region(s), "
        f"{result.overlays} overlay(s), verified {result.verified}"
    )
    assert result.verified and after.BurnedInAnnotation == "NO"
    assert after.pixel_array.shape == original.pixel_array.shape
    if name == "examples_overlay.dcm":
        assert result.overlays >= 1 and 0x60003000 not in after
