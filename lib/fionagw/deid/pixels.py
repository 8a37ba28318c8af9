"""Burned-in text: find identifying text in the pixels, blank it, and prove it is gone.

FIONA's RewritePixel masks the words Tesseract finds; here each word is judged first:

1. **Decode** every frame (pydicom, with pylibjpeg for JPEG, JPEG-LS, JPEG 2000 and RLE) and
   make an 8-bit grey image for the OCR (RGB luminance, Y of YBR, palette applied, 12/16-bit
   scaled to its range), upscaled so that small annotation text is large enough.
2. **OCR** with Tesseract (pytesseract ``image_to_data``, ``--psm 11`` sparse text: words,
   boxes, confidence, lines) three times: the image (dark text on light), its negative
   (light text on dark, most annotation) and its brightest strokes alone, black on white
   (text over speckle). A frame repeated in a multi-frame object is read once.
3. **Judge** each word (``Terms``): identifying when it is, or is part of, an identifying
   header value of the study (names and their parts, IDs, accession number, birth and study
   dates in their written forms, institution, staff, station: the release check's
   ``collect_identifiers`` plus the study dates), also with one OCR error (two for values of
   8 or more characters), or matches a pattern (any date-like string, national identifiers,
   7 or more digits, the project's ``patterns``). A word on the modality's allow-list
   (``allow``: "TIS", "MI", "cm/s", probe names ...) is kept unless it is a header value.
   ``mode: all`` masks every word the OCR reads with ``min_confidence`` or more that is not
   allow-listed. A low-confidence word next to an identifying one in the same line is masked
   too (a misread half of a name).
4. **Fixed regions** (``regions``: per manufacturer / model regex and image size, as CTP's
   pixel-anonymizer signatures) are always blanked; overlay planes (60xx) are removed.
5. **Blank** each box (padded) with black (0; MONOCHROME1 its maximum; YBR grey chroma).
6. **Verify**: a changed frame is OCR'd again; what is still identifying is masked and the
   frame OCR'd again, up to ``verify_rounds`` times. Only then is BurnedInAnnotation set NO;
   otherwise ``PixelResult.reason`` says why the object must be held back.
7. **Write**: native little endian and RLE Lossless stay in their transfer syntax; big
   endian and every other compressed syntax become Explicit VR Little Endian with the pixel
   attributes made consistent (decoded YBR as RGB, planar configuration 0), and a lossy
   original keeps LossyImageCompression 01 and its method. A frame without a finding is
   left as decoded; an object without any change keeps its pixel data byte for byte.

What was done is recorded in the object's de-identification record: one
DeidentificationMethod (0012,0063) value ("burned-in text: 3 region(s) masked, tesseract
OCR, identifying") and the Clean Pixel Data option code (113101) in the method code
sequence; never the text itself (it is identifying), and the log lines carry counts only.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    JPEG2000,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
    RLELossless,
)

from fionagw.deid.patterns import DATE_LIKE, DEFAULT_PATTERNS, date_forms, id_patterns
from fionagw.deid.release import Identifiers, collect_identifiers
from fionagw.deid.scrub import ID, WORD, mode_of, needle_regex

ENGINE = "tesseract"
MODES = ("identifying", "all")
CLEAN_PIXEL_CODE = ("113101", "Clean Pixel Data Option")
_NATIVE = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})
LOSSY_METHOD = {
    JPEGBaseline8Bit: "ISO_10918_1",
    JPEGExtended12Bit: "ISO_10918_1",
    JPEGLSNearLossless: "ISO_14495_1",
    JPEG2000: "ISO_15444_1",
    "1.2.840.10008.1.2.4.92": "ISO_15444_1",  # JPEG 2000 part 2 (lossy allowed)
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",  # HTJ2K (lossy allowed)
}
# date attributes whose values are burned in beside the patient (study, series, acquisition)
DATE_TAGS = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "PatientBirthDate")
# words the modality prints that are never identifying (full match, case-insensitive)
DEFAULT_ALLOW: dict[str, tuple[str, ...]] = {
    "*": (
        r"[0-9]+([.,][0-9]+)?(cm|mm|m|s|ms|hz|khz|mhz|db|%|fps|bpm|cm/s|m/s|mm/s)?",
        r"(cm|mm|cm/s|m/s|mm/s|hz|khz|mhz|db|fps|bpm|%|sec|ms|kv|kvp|mas|ma)",
        r"(ant|post|sup|inf|lat|med|lt|rt|left|right|l|r|a|p|h|f)",
    ),
    "US": (
        r"(tis|tib|tic|tis[0-9.]*|tib[0-9.]*|mi|mi[0-9.]*|gain|gn|depth|dr|dyn|prf|wf|fr|"
        r"freq|frq|map|pw|cw|cf|cfm|pd|sv|2d|3d|4d|hr|thi|harm|res|gen|pen|zoom|pwr|power|"
        r"fps|persist|focus|b|m|c|d|cine|frz|frozen|angle|vel|rt)",
        r"[a-z]{0,3}[0-9]{1,2}-[0-9]{1,2}[a-z]{0,3}",  # probe names: C5-1, L12-5, 9L4
    ),
}
DEFAULT_PATTERNS_EXTRA = (r"(?<![0-9])[0-9]{7,}(?![0-9])",)  # record numbers, long IDs
MAX_VERIFY_ROUNDS = 5
# sparse text (annotation is scattered words, not a page); the inversion is done here
TESSERACT_CONFIG = "--psm 11 --oem 1 -c tessedit_do_invert=0"
BRIGHT_FRACTION = 0.5  # "bright strokes": this fraction of the image's maximum and above


class PixelError(Exception):
    """Pixel data that cannot be cleaned: one line, no value from the file."""


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedRegion:
    """Boxes always blanked in images of one device and size (None / "": any)."""

    boxes: tuple[tuple[int, int, int, int], ...]  # (x, y, width, height) in pixels
    manufacturer: str = ""  # regex, re.search, case-insensitive
    model: str = ""
    rows: int | None = None
    columns: int | None = None

    def applies(self, ds: Dataset) -> bool:
        for regex, keyword in (
            (self.manufacturer, "Manufacturer"),
            (self.model, "ManufacturerModelName"),
        ):
            if regex and not re.search(regex, str(ds.get(keyword, "") or ""), re.IGNORECASE):
                return False
        return (self.rows is None or self.rows == ds.get("Rows")) and (
            self.columns is None or self.columns == ds.get("Columns")
        )


@dataclass(frozen=True)
class PixelSettings:
    enabled: bool = True
    mode: str = "identifying"  # identifying | all
    min_confidence: float = 60.0  # 0-100: mode "all" masks words read with this or more;
    # header values and patterns count at any confidence, and so does a low-confidence
    # neighbour of an identifying word
    exclusions: tuple[tuple[int, str], ...] = ()  # (tag, regex re.match): sent as they are
    patterns: tuple[str, ...] = ()  # more identifying regexes (case-insensitive)
    allow: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # modality -> regexes
    regions: tuple[FixedRegion, ...] = ()
    verify_rounds: int = 2
    id_patterns: tuple[str, ...] = DEFAULT_PATTERNS

    def allow_regex(self, modality: str) -> re.Pattern[str]:
        items = [*DEFAULT_ALLOW["*"], *DEFAULT_ALLOW.get(modality, ())]
        items += [*self.allow.get("*", ()), *self.allow.get(modality, ())]
        return _allow_regex(tuple(items))


_ALLOW_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}


def _allow_regex(items: tuple[str, ...]) -> re.Pattern[str]:
    regex = _ALLOW_CACHE.get(items)
    if regex is None:
        regex = re.compile("|".join(f"(?:{i})" for i in items), re.IGNORECASE)
        _ALLOW_CACHE[items] = regex
    return regex


PIXEL_KEYS = (
    "enabled",
    "mode",
    "min_confidence",
    "exclusions",
    "patterns",
    "allow",
    "regions",
    "verify_rounds",
)
_TAG = re.compile(r"^\s*\(?([0-9A-Fa-f]{4})\s*,\s*([0-9A-Fa-f]{4})\)?\s*$")


def parse_pixel_settings(spec: Any, where: str = "pixels") -> PixelSettings:
    """The ``deid.pixels`` block of a project (ValueError "key: problem" on a bad value)."""
    if spec is None:
        return PixelSettings()
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping")
    unknown = sorted(set(spec) - set(PIXEL_KEYS))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(PIXEL_KEYS)})")

    def fail(key: str, problem: str) -> ValueError:
        return ValueError(f"{where}.{key}: {problem}")

    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", f"expected true or false, got {enabled!r}")
    mode = spec.get("mode", "identifying")
    if mode not in MODES:
        raise fail("mode", f'expected "identifying" or "all", got {mode!r}')
    conf = spec.get("min_confidence", 60)
    if isinstance(conf, bool) or not isinstance(conf, int | float) or not 0 <= conf <= 100:
        raise fail("min_confidence", f"expected a number from 0 to 100, got {conf!r}")
    rounds = spec.get("verify_rounds", 2)
    if (
        isinstance(rounds, bool)
        or not isinstance(rounds, int)
        or not 0 <= rounds <= MAX_VERIFY_ROUNDS
    ):
        raise fail("verify_rounds", f"expected 0 to {MAX_VERIFY_ROUNDS}, got {rounds!r}")
    exclusions = []
    for i, item in enumerate(spec.get("exclusions") or []):
        m = _TAG.match(str(item.get("tag", ""))) if isinstance(item, dict) else None
        regexp = item.get("regexp") if isinstance(item, dict) else None
        if m is None or not isinstance(regexp, str) or not regexp:
            raise fail(f"exclusions[{i}]", 'expected {tag: "gggg,eeee", regexp: "..."}')
        exclusions.append(
            (int(m.group(1) + m.group(2), 16), _checked_regex(regexp, fail, f"exclusions[{i}]"))
        )
    patterns = spec.get("patterns") or []
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise fail("patterns", "expected a list of regular expressions")
    for i, p in enumerate(patterns):
        _checked_regex(p, fail, f"patterns[{i}]")
    allow = spec.get("allow") or {}
    if not isinstance(allow, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
        for k, v in allow.items()
    ):
        raise fail("allow", 'expected {MODALITY or "*": [regex, ...]}')
    for key, items in allow.items():
        for i, p in enumerate(items):
            _checked_regex(p, fail, f"allow.{key}[{i}]")
    regions = []
    for i, item in enumerate(spec.get("regions") or []):
        regions.append(_region(item, lambda problem, i=i: fail(f"regions[{i}]", problem)))
    return PixelSettings(
        enabled=enabled,
        mode=mode,
        min_confidence=float(conf),
        exclusions=tuple(exclusions),
        patterns=tuple(patterns),
        allow={k.upper() if k != "*" else k: tuple(v) for k, v in allow.items()},
        regions=tuple(regions),
        verify_rounds=rounds,
    )


def _checked_regex(text: str, fail, key: str) -> str:  # type: ignore[no-untyped-def]
    try:
        re.compile(text)
    except re.error as exc:
        raise fail(key, f"not a valid regular expression: {exc}") from None
    return text


def _region(item: Any, fail) -> FixedRegion:  # type: ignore[no-untyped-def]
    if not isinstance(item, dict) or not isinstance(item.get("boxes"), list) or not item["boxes"]:
        raise fail("expected {manufacturer, model, rows, columns, boxes: [[x, y, w, h], ...]}")
    boxes = []
    for box in item["boxes"]:
        if (
            not isinstance(box, list)
            or len(box) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in box)
            or box[2] == 0
            or box[3] == 0
        ):
            raise fail(f"a box is [x, y, width, height] of pixels, got {box!r}")
        boxes.append(tuple(box))
    for key in ("rows", "columns"):
        if item.get(key) is not None and (not isinstance(item[key], int) or item[key] <= 0):
            raise fail(f"{key}: expected a positive integer")
    for key in ("manufacturer", "model"):
        if not isinstance(item.get(key, ""), str):
            raise fail(f"{key}: expected a regular expression")
        _checked_regex(item.get(key, ""), lambda k, p: ValueError(p), key)
    return FixedRegion(
        tuple(boxes),
        item.get("manufacturer", ""),
        item.get("model", ""),
        item.get("rows"),
        item.get("columns"),
    )


def exclusion_of(ds: Dataset, settings: PixelSettings) -> str:
    """The exclusion (FIONA's rewritepixelexclusions) that keeps ``ds``'s pixels as they are:
    "gggg,eeee" of the matching tag (re.match at the start of its value), or ""."""
    for tag, regexp in settings.exclusions:
        elem = ds.get(tag)
        if elem is not None and re.match(regexp, str(elem.value or "")):
            return f"{tag >> 16:04X},{tag & 0xFFFF:04X}"
    return ""


# --- what is identifying ------------------------------------------------------------------


@dataclass
class Terms:
    """The identifying values of a study as the OCR's words are judged against them."""

    regex: re.Pattern[str] | None  # header values, scrub.py's needles and boundaries
    fuzzy: tuple[str, ...]  # values looked for with OCR errors (letters and digits only)
    patterns: tuple[re.Pattern[str], ...]  # found without a known value
    id_patterns: tuple = ()

    @classmethod
    def build(
        cls,
        headers: Iterable[Dataset],
        settings: PixelSettings | None = None,
        identifiers: Identifiers | None = None,
    ) -> Terms:
        settings = settings or PixelSettings()
        headers = list(headers)
        ids = Identifiers()
        if identifiers is not None:
            ids.update(identifiers)
        collect_identifiers(headers, into=ids)
        pairs = {(form, mode_of(kind, form)) for form, kind in ids.values.items()}
        for form, kind in ids.values.items():  # a display prints "Haukeland" of a longer name
            if kind in ("institution", "institution_address", "address"):
                pairs |= {
                    (w, WORD) for w in re.split(r"[^0-9a-z\u00c0-\uffff]+", form) if len(w) >= 5
                }
        for ds in headers:
            for keyword in DATE_TAGS:
                value = str(ds.get(keyword, "") or "").strip()
                for form in _date_forms(value):
                    pairs.add((form, "date" if not form.isdigit() else "date_start"))
        fuzzy = set()
        for form, mode in pairs:
            if mode in (WORD, ID):
                flat = _flat(form)
                if len(flat) >= 5:
                    fuzzy.add(flat)
        extra = [DATE_LIKE] + [
            re.compile(p, re.IGNORECASE) for p in (*DEFAULT_PATTERNS_EXTRA, *settings.patterns)
        ]
        return cls(
            needle_regex(pairs), tuple(sorted(fuzzy)), tuple(extra), id_patterns(ids.patterns)
        )

    def header_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self.regex.finditer(text)] if self.regex is not None else []

    def pattern_spans(self, text: str) -> list[tuple[int, int]]:
        spans = [m.span() for p in self.patterns for m in p.finditer(text)]
        for p in self.id_patterns:
            spans += p.find(text)
        return spans

    def near_value(self, word: str) -> bool:
        """``word`` is a header value read with an OCR error or two (letters, digits only)."""
        flat = _flat(word)
        if len(flat) < 5:
            return False
        return any(
            _within(flat, v, 1 if len(v) < 8 else 2)
            for v in self.fuzzy
            if abs(len(v) - len(flat)) <= 2
        )


def _date_forms(value: str) -> list[str]:
    if not re.fullmatch(r"[0-9]{8}", value):
        return []
    forms = set(date_forms(value))
    y, m, d = value[:4], int(value[4:6]), value[6:]
    month = (
        ("jan feb mar apr may jun jul aug sep oct nov dec".split())[m - 1] if 1 <= m <= 12 else ""
    )
    if month:  # 05-Mar-2024, 05MAR2024, 05-MAR-24 as devices print them
        for dd in {d, str(int(d))}:
            forms |= {
                f"{dd}-{month}-{y}",
                f"{dd}{month}{y}",
                f"{dd}-{month}-{y[2:]}",
                f"{dd} {month} {y}",
            }
    return sorted(forms)


def _flat(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _within(a: str, b: str, k: int) -> bool:
    """Levenshtein distance of a and b at most k (banded)."""
    if abs(len(a) - len(b)) > k:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        lo, hi = max(1, i - k), min(len(b), i + k)
        if lo > 1:
            cur[lo - 1] = k + 1
        for j in range(lo, hi + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != b[j - 1]))
        if hi < len(b):
            cur[hi + 1 :] = [k + 1] * (len(b) - hi)
        if min(cur[lo - 1 : hi + 1]) > k:
            return False
        prev = cur
    return prev[len(b)] <= k


# --- OCR ----------------------------------------------------------------------------------


@dataclass
class Word:
    x: int  # box in image pixels
    y: int
    w: int
    h: int
    text: str
    conf: float
    line: tuple[int, ...]


def ocr_problem() -> str:
    """Why the OCR cannot run here ("" = it can): check-config warns with it."""
    import shutil

    if shutil.which("tesseract") is None:
        return (
            "tesseract not found (Debian: apt-get install tesseract-ocr): files of series "
            "classified CHECKBURNEDINFO cannot be cleaned and are held back"
        )
    return ""


def ocr_words(gray: np.ndarray, scale: int | None = None) -> list[Word]:
    """Tesseract's words of an 8-bit grey image, read as it is and inverted."""
    import pytesseract  # imported here: a gateway without pixel cleaning needs no tesseract
    from PIL import Image

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # one core per OCR: the pool spreads work
    scale = scale or _scale(gray.shape)
    image = Image.fromarray(gray)
    if scale > 1:
        image = image.resize(
            (gray.shape[1] * scale, gray.shape[0] * scale), Image.Resampling.LANCZOS
        )
    words = []
    for variant, img in enumerate(_variants(image)):
        data = pytesseract.image_to_data(
            img, config=TESSERACT_CONFIG, output_type=pytesseract.Output.DICT
        )
        for i, text in enumerate(data["text"]):
            text = (text or "").strip()
            conf = float(data["conf"][i])
            if not text or conf < 0:
                continue
            words.append(
                Word(
                    data["left"][i] // scale,
                    data["top"][i] // scale,
                    math.ceil(data["width"][i] / scale),
                    math.ceil(data["height"][i] / scale),
                    text,
                    conf,
                    (variant, data["block_num"][i], data["par_num"][i], data["line_num"][i]),
                )
            )
    return words


def _variants(image):  # type: ignore[no-untyped-def]
    """The image as it is (dark text on light), inverted (light text on dark: most
    annotation) and its brightest strokes alone, black on white (text over speckle)."""
    from PIL import Image

    inverted = Image.eval(image, lambda v: 255 - v)
    top = image.getextrema()[1]
    level = max(96, int(top * BRIGHT_FRACTION))
    bright = image.point(lambda v: 0 if v >= level else 255)
    return (image, inverted, bright)


def _scale(shape: tuple[int, ...]) -> int:
    """Upscale factor: small images' text is a few pixels high, Tesseract wants 20 or more."""
    side = max(shape[:2])
    return 3 if side <= 300 else 2 if side <= 900 else 1


def judge(words: list[Word], terms: Terms, settings: PixelSettings, modality: str) -> list[Word]:
    """The words to mask (see the module docstring, step 3)."""
    allow = settings.allow_regex(modality)
    out: dict[int, Word] = {}
    lines: dict[tuple[int, ...], list[int]] = {}
    for i, word in enumerate(words):
        lines.setdefault(word.line, []).append(i)
    for members in lines.values():
        text, spans = "", []
        for i in members:
            if text:
                text += " "
            spans.append((len(text), len(text) + len(words[i].text)))
            text += words[i].text
        header = terms.header_spans(text)
        pattern = terms.pattern_spans(text)
        marked = set()
        for j, i in enumerate(members):
            word = words[i]
            s, e = spans[j]
            in_header = any(a < e and s < b for a, b in header) or terms.near_value(word.text)
            allowed = allow.fullmatch(word.text.strip(".,:;()[]")) is not None
            confident = word.conf >= settings.min_confidence
            in_pattern = any(a < e and s < b for a, b in pattern)
            # header values and patterns at any confidence (a date read at 40 % is a date);
            # "all text" only for words read with min_confidence (speckle reads as words too)
            if in_header or (
                not allowed and (in_pattern or (settings.mode == "all" and confident))
            ):
                marked.add(j)
        # a low-confidence neighbour of an identifying word: a misread part of the same value
        for j in sorted(marked):
            for k in (j - 1, j + 1):
                if 0 <= k < len(members) and k not in marked:
                    if words[members[k]].conf < settings.min_confidence:
                        marked.add(k)
        for j in marked:
            out[members[j]] = words[members[j]]
    return list(out.values())


# --- the object ---------------------------------------------------------------------------


@dataclass
class PixelResult:
    frames: int = 0
    regions: int = 0  # boxes blanked (OCR finds, fixed regions)
    fixed: int = 0  # of which fixed regions
    overlays: int = 0  # overlay planes removed
    verified: bool = False
    reason: str = ""  # why it must be held back ("" = may be sent)
    seconds: float = 0.0
    boxes: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # frame, x, y, w, h

    @property
    def changed(self) -> bool:
        return bool(self.regions or self.overlays)

    def method(self, settings: PixelSettings) -> str:
        return f"burned-in text: {self.regions} region(s) masked, {ENGINE} OCR, {settings.mode}"[
            :64
        ]


def _frames(ds: Dataset) -> tuple[np.ndarray, str]:
    """(frames, rows, columns, samples) and their photometric interpretation as decoded:
    native YBR_FULL as stored, every other YBR converted to RGB by pydicom."""
    from pydicom.pixels import pixel_array

    pi = str(ds.get("PhotometricInterpretation", "") or "")
    raw = pi == "YBR_FULL" and ds.file_meta.TransferSyntaxUID in _NATIVE
    arr = pixel_array(ds, raw=raw)
    if pi.startswith("YBR") and not raw:
        pi = "RGB"
    n = int(ds.get("NumberOfFrames") or 1)
    spp = int(ds.get("SamplesPerPixel") or 1)
    return arr.reshape(n, int(ds.Rows), int(ds.Columns), spp), pi


def _grey(frame: np.ndarray, ds: Dataset, pi: str) -> np.ndarray:
    """An 8-bit grey image of one frame for the OCR."""
    if pi == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        frame = apply_color_lut(frame[..., 0], ds)
        pi = "RGB"
    if frame.shape[-1] == 3:
        f = frame.astype(np.float32)
        g = (
            f[..., 0]
            if pi.startswith("YBR")
            else 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
        )
    else:
        g = frame[..., 0].astype(np.float32)
    lo, hi = float(g.min()), float(g.max())
    if hi <= lo:
        return np.zeros(g.shape, np.uint8)
    return np.clip((g - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def _blank_value(ds: Dataset, arr: np.ndarray, pi: str) -> np.ndarray:
    spp = arr.shape[-1]
    value = np.zeros(spp, arr.dtype)
    if pi == "MONOCHROME1":
        value[:] = np.iinfo(arr.dtype).max if arr.dtype.kind == "u" else 0
        bits = int(ds.get("BitsStored") or arr.dtype.itemsize * 8)
        if arr.dtype.kind == "u":
            value[:] = (1 << bits) - 1
    elif pi.startswith("YBR") and spp == 3:
        bits = int(ds.get("BitsStored") or 8)
        value[1:] = 1 << (bits - 1)
    elif pi == "MONOCHROME2" and arr.dtype.kind == "i":
        value[:] = arr.min()  # signed: the darkest value present
    return value


def _open(masked: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether a box is not already (80 %) blank: a word found inside a blanked box is an
    artefact of its edge, not text."""
    x, y, w, h = box
    area = masked[y : y + h, x : x + w]
    return area.size > 0 and area.mean() < 0.8


def _pad(word: Word, rows: int, cols: int) -> tuple[int, int, int, int]:
    p = max(2, round(word.h * 0.2))
    x0, y0 = max(0, word.x - p), max(0, word.y - p)
    x1, y1 = min(cols, word.x + word.w + p), min(rows, word.y + word.h + p)
    return x0, y0, x1 - x0, y1 - y0


def clean_dataset(
    ds: Dataset,
    terms: Terms,
    settings: PixelSettings,
    ocr: Callable[[np.ndarray], list[Word]] | None = None,
) -> PixelResult:
    """Clean ``ds`` in place (see the module docstring); the result says what was done and,
    in ``reason``, why the object must not be sent. PixelError: the pixels cannot be read.
    ``ocr``: the engine, an 8-bit grey frame to its words (default: ocr_words, Tesseract)."""
    ocr = ocr or ocr_words
    start = time.monotonic()
    result = PixelResult()
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise PixelError("float pixel data: not cleaned")
        result.overlays = _remove_overlays(ds)
        result.verified = True
        return result
    ts = ds.file_meta.TransferSyntaxUID
    if int(ds.get("BitsAllocated") or 0) == 1:
        raise PixelError("1-bit pixel data: not cleaned")
    try:
        frames, pi = _frames(ds)
    except Exception as exc:  # the decoder's message may quote nothing of the file
        raise PixelError(f"pixel data cannot be decoded ({type(exc).__name__})") from None
    rows, cols = frames.shape[1:3]
    modality = str(ds.get("Modality", "") or "")
    fixed = [b for r in settings.regions if r.applies(ds) for b in r.boxes]
    blank = _blank_value(ds, frames, pi)
    changed = False
    failed = 0
    result.frames = len(frames)
    seen: dict[bytes, tuple[list[tuple[int, int, int, int]], bool]] = {}
    for n in range(len(frames)):
        frame = frames[n]
        # a frame repeated in a cine loop (a frozen image) is read once
        key = hashlib.blake2b(frame.tobytes(), digest_size=16).digest()
        if key in seen:
            boxes, bad = seen[key]
        else:
            boxes, bad = _clean_frame(frame, fixed, blank, ds, pi, terms, settings, modality, ocr)
            seen[key] = (boxes, bad)
        for x, y, w, h in boxes:
            frame[y : y + h, x : x + w] = blank
            result.boxes.append((n, x, y, w, h))
        result.regions += len(boxes)
        result.fixed += len(fixed)
        changed = changed or bool(boxes)
        failed += bad
    result.overlays = _remove_overlays(ds)
    if failed:
        result.reason = (
            f"burned-in text: identifying text still found in {failed} of {len(frames)} "
            f"frame(s) after masking"
        )
    else:
        result.verified = True
    if changed:
        _store(ds, frames, ts, pi)
    result.seconds = time.monotonic() - start
    return result


def _clean_frame(  # type: ignore[no-untyped-def]
    frame: np.ndarray,
    fixed,
    blank: np.ndarray,
    ds: Dataset,
    pi: str,
    terms: Terms,
    settings: PixelSettings,
    modality: str,
    ocr,
) -> tuple[list[tuple[int, int, int, int]], bool]:
    """Find, mask and verify one frame in place: (the boxes blanked, whether it failed)."""
    rows, cols = frame.shape[:2]
    masked = np.zeros((rows, cols), bool)
    found = judge(ocr(_grey(frame, ds, pi)), terms, settings, modality)
    pending = list(fixed) + [_pad(w, rows, cols) for w in found]
    boxes: list[tuple[int, int, int, int]] = []
    rounds_left = settings.verify_rounds
    while pending:
        for x, y, w, h in pending:
            frame[y : y + h, x : x + w] = blank
            masked[y : y + h, x : x + w] = True
        boxes += pending
        # verification: what the OCR still finds outside what is already blank
        found = judge(ocr(_grey(frame, ds, pi)), terms, settings, modality)
        pending = [b for b in (_pad(w, rows, cols) for w in found) if _open(masked, b)]
        if pending and rounds_left == 0:
            return boxes, True
        rounds_left -= 1
    return boxes, False


def _remove_overlays(ds: Dataset) -> int:
    """Delete every overlay plane (60xx groups with OverlayData or OverlayRows)."""
    planes = {t >> 16 for t in ds.keys() if 0x6000 <= t >> 16 <= 0x601E and not (t >> 16) & 1}
    for group in planes:
        for tag in [t for t in ds.keys() if t >> 16 == group]:
            del ds[tag]
    return len(planes)


def _store(ds: Dataset, frames: np.ndarray, ts: str, pi: str) -> None:
    """Put the cleaned frames back (see the module docstring, step 7)."""
    n, rows, cols, spp = frames.shape
    if pi != ds.get("PhotometricInterpretation"):  # YBR decoded to RGB: say so
        ds.PhotometricInterpretation = pi
        if spp > 1:
            ds.PlanarConfiguration = 0
    if ts == RLELossless:
        arr = frames if n > 1 else frames[0]
        arr = arr[..., 0] if spp == 1 else arr
        ds.compress(RLELossless, arr, encoding_plugin="pydicom", generate_instance_uid=False)
        return
    if ts not in _NATIVE:
        if ts in LOSSY_METHOD:  # the history: this object was lossy-compressed once
            ds.LossyImageCompression = "01"
            if "LossyImageCompressionMethod" not in ds:
                ds.LossyImageCompressionMethod = LOSSY_METHOD[ts]
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        if spp > 1:
            ds.PlanarConfiguration = 0
        for tag in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if tag in ds:
                del ds[tag]
    elif spp > 1 and int(ds.get("PlanarConfiguration") or 0) == 1:
        frames = frames.transpose(0, 3, 1, 2)
    data = np.ascontiguousarray(frames).astype(frames.dtype.newbyteorder("<"), copy=False).tobytes()
    ds.PixelData = data + (b"\0" if len(data) % 2 else b"")
    elem = ds["PixelData"]
    elem.VR = "OB" if int(ds.BitsAllocated) <= 8 else "OW"
    elem.is_undefined_length = False
    ds._pixel_array = None
    ds._pixel_id = {}


def record(ds: Dataset, result: PixelResult, settings: PixelSettings) -> None:
    """The de-identification record of what was done (the burned-in flag only if verified)."""
    if result.verified:
        ds.BurnedInAnnotation = "NO"
    methods = ds.get("DeidentificationMethod")
    values = [] if methods is None else ([methods] if isinstance(methods, str) else list(methods))
    ds.DeidentificationMethod = values + [result.method(settings)]
    if result.verified:
        codes = ds.get("DeidentificationMethodCodeSequence") or DicomSequence()
        if not any(str(c.get("CodeValue", "")) == CLEAN_PIXEL_CODE[0] for c in codes):
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = (
                CLEAN_PIXEL_CODE[0],
                "DCM",
                CLEAN_PIXEL_CODE[1],
            )
            codes.append(item)
            ds.DeidentificationMethodCodeSequence = codes


def clean_file(path: Path, terms: Terms, settings: PixelSettings) -> PixelResult:
    """Clean the (de-identified) file at ``path`` in place: written through a temporary file
    and a rename, only when it may be sent; a file that must be held back is left unchanged
    (the caller removes it from what is sent)."""
    from fionagw.deid.writer import encode, read

    ds = read(path)
    try:
        result = clean_dataset(ds, terms, settings)
    except PixelError as exc:
        return PixelResult(reason=f"burned-in text: {exc}")
    if result.reason:
        return result
    record(ds, result, settings)
    tmp = path.with_name(f".{path.name}.px.tmp")
    tmp.write_bytes(encode(ds))
    os.replace(tmp, path)
    return result


# --- many files ---------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}
log = logging.getLogger("fionagw.deid")


def _init(terms: Terms, settings: PixelSettings, scratch: Path | None) -> None:
    _WORKER["args"] = (terms, settings, scratch)


def _one(path: Path) -> tuple[Path, PixelResult]:
    terms, settings, scratch = _WORKER["args"]
    before = tempfile.tempdir
    if scratch is not None:  # pytesseract's image files hold the text: a private folder
        scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        tempfile.tempdir = str(scratch)
    try:
        return path, clean_file(path, terms, settings)
    except Exception as exc:  # one bad file is a held-back file, the batch goes on
        log.warning("pixel cleaning failed", extra={"file": path.name, "error": type(exc).__name__})
        return path, PixelResult(reason=f"burned-in text: not cleaned ({type(exc).__name__})")
    finally:
        tempfile.tempdir = before


def clean_files(
    paths: Sequence[Path],
    terms: Terms,
    settings: PixelSettings,
    processes: int | None = None,
    scratch: Path | None = None,
) -> list[tuple[Path, PixelResult]]:
    """clean_file over ``paths`` (None = all cores, 1 = in this process), in order.
    ``scratch``: a private folder for the OCR's temporary images (default: the system's)."""
    processes = min(processes or os.cpu_count() or 1, len(paths))
    if processes <= 1:
        _init(terms, settings, scratch)
        return [_one(p) for p in paths]
    import multiprocessing

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_init, initargs=(terms, settings, scratch)
    ) as pool:
        return list(pool.map(_one, paths))
