"""The element codec against pydicom's reader on every file pydicom ships, and under fuzzing."""

from __future__ import annotations

import io
import random
import struct
import time
import tracemalloc
import warnings
import zlib
from collections import Counter
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from fionagw.classify import series
from fionagw.dicom.errors import CodecError, MalformedError, TruncatedError, UnsupportedError
from fionagw.dicom.raw import (
    ITEM_DELIMITER,
    SEQUENCE_DELIMITER,
    element_header,
    item_header,
    raw_elements,
    read_part10,
)
from fionagw.dicom.tags import PIXEL_TAGS, tag_text
from fionagw.dicom.vr import dictionary_vr
from fionagw.dicom.walk import MAX_DEPTH, UNDEFINED, elements, inflate, items, part10
from fionagw.receive import store

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"

# Files pydicom reads but the codec leaves to it (its callers then use pydicom), and why.
UNUSUAL = {
    "MR_truncated.dcm": (TruncatedError, "the pixel data run past the end of the file"),
    "rtplan_truncated.dcm": (TruncatedError, "a value runs past the end of the file"),
    "SC_rgb_jpeg.dcm": (UnsupportedError, "implicit VR under an explicit syntax: pydicom switches"),
    "meta_missing_tsyntax.dcm": (UnsupportedError, "no transfer syntax: pydicom guesses one"),
    "DICOMDIR-nooffset": (TruncatedError, "its last item runs past the end of the file"),
}
# Not Part-10 (no "DICM" prefix): pydicom reads these only with force=True, guessing the
# encoding; the codec reads their dataset bytes given that encoding. (no_meta.dcm is left out:
# pydicom's guess, implicit VR, reads one element whose value runs past the end.)
NO_META = {
    "ExplVR_BigEndNoMeta.dcm": (False, False),
    "ExplVR_LitEndNoMeta.dcm": (False, True),
    "rtstruct.dcm": (True, True),
}
# read_part10 also leaves these to pydicom (the walk above reads them).
READ_UNUSUAL = {
    **{name: kind for name, (kind, _why) in UNUSUAL.items()},
    "image_dfl.dcm": UnsupportedError,  # deflated: offsets would be the inflated stream's
    "UN_sequence.dcm": UnsupportedError,  # undefined-length UN: pydicom's settings decide
}
INFLATE_LIMIT = 1 << 24
FUZZ_INFLATE_LIMIT = 1 << 20


def shipped_files() -> list[Path]:
    return sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


def dcmread(path: Path | io.BytesIO, **kw) -> Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, **kw)
        except Exception:  # noqa: BLE001 - any failure: pydicom does not read it
            return None


def assert_same_elements(
    data: bytes,
    start: int,
    end: int,
    implicit: bool,
    little: bool,
    ref: Dataset,
    where: str,
    top: bool = True,
) -> None:
    """The walk of data[start:end] gives pydicom's elements: tags (in order), VRs, lengths,
    raw values (and, at the top, offsets); sequences item by item where pydicom parses them."""
    ours = list(elements(data, start, end, implicit, little, item=not top))
    assert [tag for tag, *_ in ours] == [int(tag) for tag in ref._dict], where
    for tag, vr, length, value_start, value_end in ours:
        here = f"{where}/{tag_text(tag)}"
        elem = ref._dict[tag]
        sequence: Sequence | None = None
        if isinstance(elem, RawDataElement):
            assert (elem.VR, elem.length) == (vr, length), here
            assert (elem.value or b"") == data[value_start:value_end], here
            if top:
                assert elem.value_tell == value_start, here
            if length and (vr or dictionary_vr(tag)) == "SQ":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sequence = ref[tag].value  # pydicom parses it now
        elif elem.VR == "SQ":  # pydicom parsed it while reading: an undefined-length sequence
            assert length == UNDEFINED and vr in (None, "SQ", "UN"), here
            sequence = elem.value
        else:  # pydicom converted it while reading (the character set): the same value
            raw = RawDataElement(
                BaseTag(tag), vr, length, data[value_start:value_end], 0, implicit, little
            )
            assert convert_raw_data_element(raw).value == elem.value, here
        if sequence is None:
            continue
        walked = list(items(data, value_start, value_end, implicit, little))
        assert len(walked) == len(sequence), here
        for i, ((item_start, item_end, item_implicit), item) in enumerate(
            zip(walked, sequence, strict=True)
        ):
            assert item_implicit == item.original_encoding[0], f"{here}[{i}]"
            assert_same_elements(
                data, item_start, item_end, item_implicit, little, item, f"{here}[{i}]", False
            )


@pytest.mark.parametrize("path", shipped_files(), ids=lambda p: str(p.relative_to(TEST_FILES)))
def test_walk_gives_pydicoms_elements_for_every_shipped_file(path: Path) -> None:
    data = path.read_bytes()
    ref = dcmread(path)
    if path.name in NO_META:
        forced = dcmread(path, force=True)
        assert forced is not None and ref is None
        assert forced.original_encoding == NO_META[path.name]
        with pytest.raises(UnsupportedError):
            part10(data)
        assert_same_elements(data, 0, len(data), *NO_META[path.name], forced, path.name)
        return
    try:
        p = part10(data, inflate_limit=INFLATE_LIMIT)
        assert_same_elements(p.body, p.start, len(p.body), *p.syntax[:2], ref, path.name)
    except CodecError as exc:
        if ref is None:
            return  # pydicom does not read it either (text, JSON, an ICC profile, ...)
        assert path.name in UNUSUAL, f"{path.name}: {exc}"
        assert isinstance(exc, UNUSUAL[path.name][0])
        return
    assert ref is not None, f"{path.name}: pydicom does not read it, the codec did"
    meta_ref = pydicom.filereader.read_dataset(
        io.BytesIO(data[132:]), False, True, stop_when=lambda tag, vr, length: tag >> 16 != 2
    )
    assert [(t, vr, n, data[s:e]) for t, vr, n, s, e in p.meta] == [
        (int(e.tag), e.VR, e.length, e.value or b"") for e in meta_ref._dict.values()
    ]
    assert p.syntax_uid == ref.file_meta.TransferSyntaxUID


def _values(ds: Dataset) -> dict[int, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {int(tag): repr(ds[tag].value) for tag in ds.keys()}


@pytest.mark.parametrize("lazy", [False, True], ids=["sequences-parsed", "sequences-lazy"])
def test_read_part10_is_dcmread_for_every_shipped_file(lazy: bool) -> None:
    read = 0
    for path in shipped_files():
        ref = dcmread(path, stop_before_pixels=lazy)
        try:
            stop = PIXEL_TAGS if lazy else ()  # as the classifier and the de-identification read
            ours = read_part10(path.read_bytes(), str(path), lazy_sequences=lazy, stop=stop)
        except CodecError as exc:
            unusual = READ_UNUSUAL.get(path.name)
            if lazy and path.name == "UN_sequence.dcm":
                unusual = None  # a lazy sequence reads it
            assert ref is None or (unusual and isinstance(exc, unusual)), f"{path}: {exc}"
            continue
        assert ref is not None, path
        read += 1
        for tag, elem in ours._dict.items():
            if isinstance(elem, RawDataElement) and isinstance(ref._dict[tag], RawDataElement):
                assert elem == ref._dict[tag], (path, tag)
        assert _values(ours) == _values(ref), path
        assert _values(ours.file_meta) == _values(ref.file_meta), path
        assert ours.original_encoding == ref.original_encoding, path
        assert ours._read_charset == ref._read_charset, path
        assert ours.preamble == ref.preamble, path
    assert read > 150


# --- crafted bytes ------------------------------------------------------------------------------


def _text(tag: int, vr: str, value: bytes) -> bytes:
    return element_header(tag, vr, len(value), False) + value


def _sq(tag: int, body: bytes, *, defined: bool) -> bytes:
    length = len(body) if defined else UNDEFINED
    return (
        element_header(tag, "SQ", length, False) + body + (b"" if defined else SEQUENCE_DELIMITER)
    )


def _nested(depth: int, *, defined: bool) -> bytes:
    """``depth`` sequences of one item each, the innermost holding one text element."""
    body = _text(0x00100010, "PN", b"DOE^JOHN")
    for _ in range(depth):
        if defined:
            item = item_header(len(body)) + body
        else:
            item = item_header(UNDEFINED) + body + ITEM_DELIMITER
        body = _sq(0x00081140, item, defined=defined)
    return body


def _part10(dataset: bytes, syntax: str = ExplicitVRLittleEndian) -> bytes:
    """Preamble, prefix, a file meta group naming ``syntax``, then ``dataset``."""
    uid = syntax.encode() + b"\0" * (len(syntax) % 2)
    meta = _text(0x00020010, "UI", uid)
    group_length = _text(0x00020000, "UL", struct.pack("<I", len(meta)))
    return b"\0" * 128 + b"DICM" + group_length + meta + dataset


def test_nested_undefined_lengths_and_items_in_the_other_vr() -> None:
    inner_implicit = struct.pack("<HHI", 0x0010, 0x0020, 4) + b"ID01"  # implicit VR item
    item = item_header(UNDEFINED) + inner_implicit + ITEM_DELIMITER
    data = _part10(_sq(0x00081140, item, defined=False) + _text(0x0020000D, "UI", b"1.2\0"))
    p = part10(data)
    walked = list(elements(p.body, p.start, len(data), False, True))
    assert [tag for tag, *_ in walked] == [0x00081140, 0x0020000D]
    tag, vr, length, start, end = walked[0]
    assert (vr, length) == ("SQ", UNDEFINED) and data[end : end + 8] == SEQUENCE_DELIMITER
    [(item_start, item_end, implicit)] = items(data, start, end, False, True)
    assert implicit and data[item_start:item_end] == inner_implicit


def test_stop_ends_the_walk_before_a_value_it_does_not_read() -> None:
    cut = _part10(
        _text(0x00080018, "UI", b"1.2.3\0") + element_header(0x7FE00010, "OB", 1000, False)
    )
    p = part10(cut)
    with pytest.raises(TruncatedError) as info:
        list(elements(cut, p.start, len(cut), False, True))
    assert not info.value.in_header
    walk = elements(cut, p.start, len(cut), False, True, stop=PIXEL_TAGS)
    assert [tag for tag, *_ in walk] == [0x00080018]


@pytest.mark.parametrize(
    ("data", "error", "in_header"),
    [
        (_part10(_text(0x00100010, "PN", b"DOE^JOHN"))[:-3], TruncatedError, False),
        (_part10(_text(0x00100010, "PN", b"DOE^JOHN") + b"\x10\x00"), TruncatedError, True),
        (_part10(_nested(3, defined=False))[:-8], TruncatedError, True),  # no delimiter
        (_part10(_nested(MAX_DEPTH + 5, defined=False)), MalformedError, None),
        (_part10(_text(0x00080018, "UI", b"1.2\0") + item_header(0)), MalformedError, None),
        (_part10(b"\x10\x00\x10\x00ZZ\x02\x00ab"), UnsupportedError, None),  # unknown VR
        (_part10(b"\x10\x00\x10\x00\x08\x00\x00\x00DOE^JOHN"), UnsupportedError, None),
        (b"\0" * 128 + b"DICX" + b"\0" * 20, UnsupportedError, None),
    ],
    ids=[
        "value",
        "header",
        "delimiter",
        "depth",
        "item",
        "vr",
        "implicit-under-explicit",
        "prefix",
    ],
)
def test_broken_bytes_raise_the_codecs_errors(data: bytes, error: type, in_header) -> None:
    with pytest.raises(error) as info:
        p = part10(data)
        for _tag, vr, length, start, end in elements(p.body, p.start, len(p.body), False, True):
            if length == UNDEFINED or vr == "SQ":
                list(items(p.body, start, end, False, True))
    if in_header is not None:
        assert info.value.in_header is in_header
    assert "DOE" not in str(info.value)  # messages name offsets and tags, never values


def test_huge_lengths_allocate_nothing_like_their_size() -> None:
    data = _part10(element_header(0x00091010, "OB", 0xFFFFFFF0, False) + b"x" * 64)
    tracemalloc.start()
    try:
        for lazy in (False, True):
            with pytest.raises(TruncatedError):
                read_part10(data, "huge", lazy_sequences=lazy)
        with pytest.raises(TruncatedError):
            list(elements(data, 132, len(data), False, True))
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_deflated_dataset_is_inflated_up_to_its_limit() -> None:
    dataset = _text(0x00080018, "UI", b"1.2.3\0") + _text(0x00100010, "PN", b"X" * 4000)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = _part10(packer.compress(dataset) + packer.flush(), DeflatedExplicitVRLittleEndian)
    with pytest.raises(UnsupportedError):
        part10(data)
    p = part10(data, inflate_limit=1 << 20)
    assert p.body == dataset and p.start == 0
    cut = part10(data, inflate_limit=100)
    assert len(cut.body) == 100
    with pytest.raises(TruncatedError):
        list(elements(cut.body, 0, len(cut.body), False, True))
    with pytest.raises(MalformedError):
        inflate(b"\xff" * 64, 0, 1000)


def test_headers_written_are_walked_back() -> None:
    for implicit in (False, True):
        body = element_header(0x00100010, "PN", 4, implicit) + b"AB^C"
        body += element_header(0x7FE00010, "OB", UNDEFINED, implicit)
        body += item_header(0) + item_header(2) + b"\xff\xd8" + SEQUENCE_DELIMITER
        walked = list(elements(body, 0, len(body), implicit, True))
        assert [(t, n) for t, _vr, n, _s, _e in walked] == [
            (0x00100010, 4),
            (0x7FE00010, UNDEFINED),
        ]
        fragments = list(items(body, walked[1][3], walked[1][4], implicit, True))
        assert [body[s:e] for s, e, _imp in fragments] == [b"", b"\xff\xd8"]


# --- fuzzing ------------------------------------------------------------------------------------


def _pydicom_bytes(ds: Dataset, syntax: str) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _seeds() -> list[bytes]:
    """Small objects covering what the walker handles: both VRs and byte orders, nested
    sequences of defined and undefined length, private tags, encapsulated pixel data."""
    seeds = []
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        ds.SOPInstanceUID = "1.2.3.4.5"
        ds.StudyInstanceUID = "1.2.3.4"
        ds.SeriesInstanceUID = "1.2.3.4.1"
        ds.PatientName = "DOE^JOHN"
        inner = Dataset()
        inner.CodeValue = "X1"
        outer = Dataset()
        outer.ReferencedSOPInstanceUID = "1.2.3.9"
        outer.PurposeOfReferenceCodeSequence = Sequence([inner])
        ds.ReferencedImageSequence = Sequence([outer, outer])
        ds.ReferencedImageSequence.is_undefined_length = syntax != ImplicitVRLittleEndian
        ds.private_block(0x0019, "ACME 1", create=True).add_new(0x10, "LO", "private")
        ds.PixelData = b"\0\1" * 32
        ds["PixelData"].VR = "OW"
        seeds.append(_pydicom_bytes(ds, syntax))
    ds = pydicom.dcmread(io.BytesIO(seeds[0]))
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8" + b"j" * 30, b"k" * 16])
    ds["PixelData"].VR = "OB"
    seeds.append(_pydicom_bytes(ds, JPEGBaseline8Bit))
    seeds += [_part10(_nested(25, defined=False)), _part10(_nested(20, defined=True))]
    for name in ("rtplan.dcm", "UN_sequence.dcm", "nested_priv_SQ.dcm", "image_dfl.dcm"):
        seeds.append((TEST_FILES / name).read_bytes())
    return seeds


def _mutation(seed: bytes, offsets: list[int], rng: random.Random) -> bytes:
    """``seed`` damaged one of six ways; ``offsets`` are where a header may start."""
    kind = rng.randrange(6)
    data = bytearray(seed)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 8)):
            bit = rng.randrange(len(data) * 8)
            data[bit // 8] ^= 1 << bit % 8
    elif kind == 1:  # cut anywhere
        del data[rng.randrange(len(data)) :]
    elif kind == 2:  # a length field (2 or 4 bytes, wherever one may be) set huge or undefined
        at = rng.choice(offsets) + rng.choice((4, 6, 8))
        huge = rng.choice((0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x00FFFFF0))
        width = rng.choice((2, 4))
        data[at : at + width] = huge.to_bytes(4, "little")[:width]
    elif kind == 3:  # undefined lengths without any delimiter
        for marker in (b"\xfe\xff\xdd\xe0", b"\xfe\xff\x0d\xe0", b"\xff\xfe\xe0\xdd"):
            data = bytearray(bytes(data).replace(marker, b""))
    elif kind == 4:  # deep nesting, delimiters dropped or not
        nested = _nested(rng.randint(MAX_DEPTH - 2, 400), defined=rng.random() < 0.5)
        if rng.random() < 0.5:
            nested = nested[: rng.randrange(len(nested))]
        data = bytearray(_part10(nested))
    else:  # random bytes after the file meta
        data[rng.randrange(132, len(data)) :] = rng.randbytes(rng.randrange(1, 200))
    return bytes(data)


def _every_entry_point(data: bytes) -> None:
    """Each codec entry point on ``data``: it returns or raises CodecError, nothing else."""
    for call in (
        lambda: _walk_everything(data),
        lambda: read_part10(data, "fuzz"),
        lambda: read_part10(data, "fuzz", lazy_sequences=True, stop=PIXEL_TAGS),
        lambda: raw_elements(data, 132, len(data), False, True),
        lambda: list(items(data, 132, len(data), False, True)),
        lambda: inflate(data, 132, FUZZ_INFLATE_LIMIT),
    ):
        try:
            call()
        except CodecError:
            pass
    for implicit, little in ((True, True), (False, True), (False, False)):
        try:
            list(elements(data, 132, len(data), implicit, little))
        except CodecError:
            pass
    store._scan_identifiers(data)  # None when the codec cannot read it
    series._fast_read(io.BytesIO(data), "fuzz")


def _walk_everything(data: bytes) -> None:
    p = part10(data, inflate_limit=FUZZ_INFLATE_LIMIT)
    _walk_dataset(p.body, p.start, len(p.body), *p.syntax[:2], depth=0, item=False)


def _walk_dataset(data: bytes, start: int, end: int, implicit, little, depth, item) -> None:
    walk = elements(data, start, end, implicit, little, depth=depth, item=item)
    for tag, vr, length, value_start, value_end in walk:
        kind = vr or dictionary_vr(tag) or "UN"
        if kind == "SQ" or (kind == "UN" and length == UNDEFINED):  # as pydicom reads them
            for s, e, imp in items(data, value_start, value_end, implicit, little, depth + 1):
                _walk_dataset(data, s, e, imp, little, depth + 1, True)


def test_fuzzed_inputs_parse_or_raise_the_codecs_error_quickly() -> None:
    rng = random.Random(20261203)
    seeds = [(seed, [pos for pos in range(132, len(seed) - 8, 2)]) for seed in _seeds()]
    for seed, _offsets in seeds:
        _walk_everything(seed)  # the seeds themselves are read whole
    inputs = [_mutation(*rng.choice(seeds), rng) for _ in range(1000)]
    outcomes: Counter[str] = Counter()
    for data in inputs:
        try:
            _walk_everything(data)
            outcomes["read"] += 1
        except CodecError as exc:
            outcomes[type(exc).__name__] += 1
    assert min(outcomes[k] for k in ("read", "TruncatedError", "MalformedError")) >= 50, outcomes
    assert outcomes["UnsupportedError"] >= 50, outcomes
    started = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about odd character sets and values
        for data in inputs:
            _every_entry_point(data)
    assert time.process_time() - started < 5


def test_an_item_delimiter_ends_only_an_item() -> None:
    walk = elements(ITEM_DELIMITER + b"rest", 0, 12, False, True, item=True)
    assert list(walk) == []
    with pytest.raises(MalformedError):
        list(elements(ITEM_DELIMITER, 0, 8, False, True))
