"""Pixel-cleaning settings, exclusions, the judging of OCR words and the verification's
hold-back, without Tesseract (deid/pixels.py; the OCR runs in test_pixels.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array

from fionagw.config import ConfigError
from fionagw.config.projects import Project
from fionagw.deid import pixels
from fionagw.deid.pixels import PixelSettings, Terms, parse_pixel_settings
from fionagw.deid.project_settings import pixel_settings_for_project
from fionagw.deid.writer import encode, read
from support import burned

SETTINGS = PixelSettings()


def test_verification_failure_holds_back() -> None:
    """What the verification still reads after the last round holds the object back; the
    OCR here is a stand-in that reads the ID again each time, one box further on."""
    ds = burned.us_dataset([np.full((100, 400), 10, np.uint8)])
    data = ds.PixelData
    calls = []

    def stubborn(gray: np.ndarray) -> list[pixels.Word]:
        calls.append(1)
        return [pixels.Word(10 + 60 * len(calls), 40, 50, 12, "PID4711235", 90, (0, 1, 1, 1))]

    result = pixels.clean_dataset(ds, Terms.build([ds]), PixelSettings(verify_rounds=1), stubborn)
    assert not result.verified and len(calls) == 3  # find, verify, verify again
    assert result.reason == (
        "burned-in text: identifying text still found in 1 of 1 frame(s) after masking"
    )
    assert ds.PixelData != data  # masked as far as it went; the caller does not send it


def test_settings_errors_are_one_line() -> None:
    for spec, key in (
        ({"mode": "some"}, "mode"),
        ({"min_confidence": 101}, "min_confidence"),
        ({"exclusions": [{"tag": "0008", "regexp": "x"}]}, "exclusions[0]"),
        ({"patterns": ["("]}, "patterns[0]"),
        ({"regions": [{"boxes": [[1, 2, 0, 4]]}]}, "regions[0]"),
        ({"colour": 1}, "colour"),
    ):
        with pytest.raises(ValueError, match=rf"^pixels\.{re.escape(key)}: "):
            parse_pixel_settings(spec)


def test_exclusions_match_the_start_of_a_tag_value() -> None:
    settings = parse_pixel_settings({"exclusions": [{"tag": "0008,103E", "regexp": "KEEP"}]})
    ds = Dataset()
    ds.SeriesDescription = "KEEP as is"
    assert pixels.exclusion_of(ds, settings) == "0008,103E"
    ds.SeriesDescription = "not KEEP"
    assert pixels.exclusion_of(ds, settings) == ""


def test_terms_judge_header_values_with_ocr_errors() -> None:
    ds = burned.us_dataset([np.zeros((8, 8), np.uint8)])
    terms = Terms.build([ds])
    line = (0, 1, 1, 1)
    words = [
        pixels.Word(0, 0, 10, 10, text, conf, line)
        for text, conf in (("PID4F11235", 70), ("Nordrnann", 60), ("TIS", 90), ("05-Mar-2024", 80))
    ]
    assert [w.text for w in pixels.judge(words, terms, SETTINGS, "US")] == [
        "PID4F11235",
        "Nordrnann",
        "05-Mar-2024",
    ]


def test_project_block_errors_name_the_key() -> None:
    project = Project("DEMO", ".*", deid={"pixels": {"mode": "everything"}})
    with pytest.raises(ConfigError, match=r"projects\.DEMO\.deid\.pixels\.mode"):
        pixel_settings_for_project(project)
    project = Project("DEMO", ".*", deid={"pixels": {"enabled": False}})
    assert pixel_settings_for_project(project).enabled is False


def test_repeated_frames_are_read_once_and_masked_alike() -> None:
    img = np.full((60, 200), 10, np.uint8)
    ds = burned.us_dataset([img, img, img.copy() + 1])
    calls = []

    def reader(gray: np.ndarray) -> list[pixels.Word]:
        calls.append(1)  # finds the ID the first time a frame is read, then nothing
        return [] if len(calls) % 2 == 0 else [pixels.Word(20, 20, 60, 12, "PID4711235", 90, (0,))]

    result = pixels.clean_dataset(ds, Terms.build([ds]), SETTINGS, reader)
    assert result.verified and len(calls) == 4  # two distinct frames: find + verify each
    assert result.regions == 3 and {b[0] for b in result.boxes} == {0, 1, 2}
    arr = ds.pixel_array
    assert (arr[:, 22:30, 30:60] == 0).all() and (arr[:, 50:, :] != 0).all()


def test_deid_settings_check_the_pixels_block_and_qc_report_says_what_happens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fionagw.config import load_config
    from fionagw.config.projects import FEATURES
    from fionagw.deid.project_settings import settings_for_project
    from fionagw.qc.report import deid_summary
    from support.site import write_config

    cfg = load_config(write_config(tmp_path))
    bad = Project("DEMO", ".*", deid={"mode": "keyed", "pixels": {"verify_rounds": 9}})
    with pytest.raises(ConfigError, match=r"projects\.DEMO\.deid\.pixels\.verify_rounds"):
        settings_for_project(bad, cfg)
    on = Project("DEMO", ".*", deid={"mode": "keyed", "pixels": {"mode": "all"}})
    assert deid_summary(cfg, on)["pixel_cleaning"].startswith("burned-in text masked")
    off = Project("DEMO", ".*", deid={"mode": "keyed", "pixels": {"enabled": False}})
    assert deid_summary(cfg, off)["pixel_cleaning"].startswith("off:")
    raw = Project("DEMO", ".*", features={FEATURES["never_rewrite_pixels"]})
    assert "sent as they are" in deid_summary(cfg, raw)["pixel_cleaning"]


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("SC_rgb_jpeg_dcmtk.dcm", "1.2.840.10008.1.2.1"),  # lossy JPEG YBR 4:2:2 -> RGB
        ("MR_small_jp2klossless.dcm", "1.2.840.10008.1.2.1"),
        ("MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.1"),
        ("SC_rgb_rle.dcm", "1.2.840.10008.1.2.5"),
        ("SC_rgb_rle_16bit_2frame.dcm", "1.2.840.10008.1.2.5"),
        ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5"),
        ("SC_ybr_full_422_uncompressed.dcm", "1.2.840.10008.1.2.1"),
        ("SC_rgb_small_odd.dcm", "1.2.840.10008.1.2.1"),
        ("MR_small_bigendian.dcm", "1.2.840.10008.1.2.1"),
        ("MR_small_implicit.dcm", "1.2.840.10008.1.2"),
    ],
)
def test_every_syntax_masked_and_written_consistently(
    name: str, syntax: str, tmp_path: Path
) -> None:
    """A fixed region (no OCR: the reader finds nothing) blanks the same pixels whatever the
    transfer syntax; the rest decodes as it did; the attributes describe what is stored."""
    src = Path(get_testdata_file(name))
    path = tmp_path / name
    path.write_bytes(src.read_bytes())
    original = dcmread(path)
    before = pixel_array(original)  # YBR decoded to RGB, as a converted file stores it
    settings = PixelSettings(regions=(pixels.FixedRegion(((0, 0, 4, 3),)),))
    ds = read(path)
    result = pixels.clean_dataset(ds, Terms.build([original]), settings, lambda gray: [])
    assert result.verified and result.regions == result.frames
    pixels.record(ds, result, settings)
    path.write_bytes(encode(ds))

    after = dcmread(path)
    assert after.file_meta.TransferSyntaxUID == syntax
    assert after.BurnedInAnnotation == "NO"
    arr = after.pixel_array
    assert arr.shape == before.shape
    multi = int(original.get("NumberOfFrames") or 1) > 1
    a, b = (arr, before) if multi else (arr[None], before[None])
    region = np.zeros(a.shape[1:3], bool)
    region[0:3, 0:4] = True
    assert (a[:, ~region] == b[:, ~region]).all(), "pixels outside the region changed"
    assert (a[:, region] == a[:, region].min()).all()  # one blank value
    ts = original.file_meta.TransferSyntaxUID
    if ts in pixels.LOSSY_METHOD:
        assert after.LossyImageCompression == "01"
    if int(after.SamplesPerPixel) == 3 and ts.is_compressed:
        assert after.PhotometricInterpretation == "RGB" and after.PlanarConfiguration == 0


def test_ocr_problem_names_the_missing_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert pixels.ocr_problem() == ""  # installed here
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without tesseract
    assert pixels.ocr_problem().startswith("tesseract not found")
