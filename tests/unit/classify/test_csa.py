"""Siemens CSA header reader: both layouts, name clean-up, malformed input, FIONA's keys."""

from __future__ import annotations

import logging
import struct

import pytest
from pydicom.dataset import Dataset

from fionagw.classify import csa
from support.synth import encode_csa, phoenix_protocol


def _item(text: bytes) -> bytes:
    """One CSA2 item: four int32 (len, len, 77, len), the bytes, padding to 4."""
    return struct.pack("<4i", len(text), len(text), 77, len(text)) + text + b"\0" * (-len(text) % 4)


def _element(name: bytes, vr: bytes, vm: int, items: list[bytes]) -> bytes:
    return struct.pack(
        "<64si4siii", name.ljust(64, b"\0"), vm, vr.ljust(4, b"\0"), 3, len(items), 77
    ) + b"".join(_item(i) for i in items)


def hand_built_sv10() -> bytes:
    """Written by hand (not by synth's encoder): names carry garbage after their NUL."""
    elements = [
        _element(b"B_value\0\xde\xad\xbe\xefgarbage", b"IS", 1, [b"1000\0", b"", b""]),
        _element(
            b"DiffusionGradientDirection\0\x01\x02junk",
            b"FD",
            3,
            [b"0.70710678\0", b"-0.70710678\0", b"0.00000000\0", b"", b"", b""],
        ),
        _element(b"DiffusionDirectionality\0zz", b"CS", 1, [b"DIRECTIONAL\0  "]),
        _element(b"ImaCoilString\0", b"LO", 1, [b"HEA;HEP\0"]),
        _element(b"Empty\0xx", b"DS", 0, []),
    ]
    return b"SV10\x04\x03\x02\x01" + struct.pack("<II", len(elements), 77) + b"".join(elements)


def test_hand_built_sv10_names_are_text_and_nul_trimmed() -> None:
    header = csa.parse_csa(hand_built_sv10())
    assert list(header) == [
        "B_value",
        "DiffusionGradientDirection",
        "DiffusionDirectionality",
        "ImaCoilString",
        "Empty",
    ]
    assert header["B_value"] == [1000]
    assert header["DiffusionGradientDirection"] == pytest.approx([0.70710678, -0.70710678, 0.0])
    assert header["DiffusionDirectionality"] == ["DIRECTIONAL"]
    assert header["ImaCoilString"] == ["HEA;HEP"]
    assert header["Empty"] == []


def test_item_strings_are_four_byte_aligned() -> None:
    # 1-, 2-, 3- and 5-byte items: every following item must still be found.
    blob = (
        b"SV10\x04\x03\x02\x01"
        + struct.pack("<II", 2, 77)
        + _element(b"A", b"LO", 4, [b"x", b"yz", b"abc", b"hello"])
        + _element(b"B", b"IS", 1, [b"7"])
    )
    assert csa.parse_csa(blob) == {"A": ["x", "yz", "abc", "hello"], "B": [7]}


@pytest.mark.parametrize("csa1", [False, True], ids=["SV10", "CSA1"])
def test_round_trip_with_synth_encoder(csa1: bool) -> None:
    elements = [
        ("EchoLinePosition", "IS", [128]),
        ("B_value", "IS", [1000]),
        ("DiffusionGradientDirection", "FD", [0.5, -0.25, 0.8]),
        ("DiffusionDirectionality", "CS", ["DIRECTIONAL"]),
        ("NumberOfImagesInMosaic", "US", [60]),
        ("PhaseEncodingDirectionPositive", "IS", [0]),
        ("SliceMeasurementDuration", "DS", [2500.5]),
        ("ImaCoilString", "LO", ["HEA;HEP"]),
    ]
    blob = encode_csa(elements, csa1=csa1, name_garbage=b"\xff\xfegarbage")
    assert blob.startswith(b"SV10") != csa1
    header = csa.parse_csa(blob)
    assert header == {name: values for name, _vr, values in elements}
    info = csa.image_info(header)
    assert info == {
        "B_value": 1000,
        "DiffusionDirectionality": "DIRECTIONAL",
        "NumberOfImagesInMosaic": 60,
        "PhaseEncodingDirectionPositive": 0,
        "DiffusionGradientDirection": [0.5, -0.25, 0.8],
    }


MALFORMED = {
    "empty": b"",
    "magic only": b"SV10",
    "truncated count": b"SV10\x04\x03\x02\x01\x05\x00",
    "zero elements": b"SV10\x04\x03\x02\x01" + struct.pack("<II", 0, 77),
    "huge count": b"SV10\x04\x03\x02\x01" + struct.pack("<II", 10**6, 77),
    "random bytes": bytes(range(256)) * 3,
    "text": b"this is not a CSA header at all, just text" * 10,
}


@pytest.mark.parametrize("blob", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_never_raises(blob: bytes) -> None:
    assert csa.parse_csa(blob) == {}


def test_truncated_returns_what_was_read() -> None:
    blob = hand_built_sv10()
    cut = blob.index(b"DiffusionDirectionality") + 30  # inside the third element
    header = csa.parse_csa(blob[:cut])
    assert header["B_value"] == [1000]
    assert "DiffusionGradientDirection" in header
    assert "ImaCoilString" not in header
    for n in range(0, len(blob), 7):  # every truncation point is survivable
        assert isinstance(csa.parse_csa(blob[:n]), dict)


def test_malformed_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="fionagw.classify.csa"):
        csa.parse_csa(hand_built_sv10()[:200])
    assert "malformed CSA header" in caplog.text


def test_item_length_past_end_stops_cleanly() -> None:
    bad = (
        b"SV10\x04\x03\x02\x01"
        + struct.pack("<II", 2, 77)
        + _element(b"Good", b"IS", 1, [b"5"])
        + struct.pack("<64si4siii", b"Bad".ljust(64, b"\0"), 1, b"IS\0\0", 6, 1, 77)
        + struct.pack("<4i", 9999, 9999, 77, 9999)
        + b"12"
    )
    assert csa.parse_csa(bad) == {"Good": [5]}


def test_unconvertible_number_kept_as_text() -> None:
    blob = b"SV10\x04\x03\x02\x01" + struct.pack("<II", 1, 77) + _element(b"X", b"IS", 1, [b"n/a"])
    assert csa.parse_csa(blob) == {"X": ["n/a"]}


def _phoenix(**kw: object) -> str:
    args = dict(
        protocol_name="ep2d_diff",
        sequence_file="ep2d_diff",
        n_slices=81,
        wip_uuid="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        sequence_id=17,
    )
    args.update(kw)
    return phoenix_protocol(**args)  # type: ignore[arg-type]


def test_ascconv_quotes_doubled_and_tabs() -> None:
    values = csa.ascconv(_phoenix())
    assert values["sWipMemBlock.tFree"] == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    assert values["sProtConsistencyInfo.tMeasuredBaselineString"] == "N4_VE11C_LATEST_20160120"
    assert values["sGroupArray.asGroup[0].nSize"] == "81"
    assert values["tSequenceFileName"] == "%SiemensSeq%\\ep2d_diff"


def test_series_info_fiona_keys() -> None:
    header = csa.parse_csa(encode_csa([("MrPhoenixProtocol", "UN", [_phoenix()])]))
    assert csa.series_info(header) == {
        "siemensUUID": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "OSLevel": "VE11C",
        "NumSlices": "81",
        "MeasID": "17",
    }


def test_num_slices_falls_back_to_slice_array() -> None:
    text = _phoenix().replace("sGroupArray.asGroup[0].nSize\t = \t81\n", "")
    text = text.replace("sSliceArray.lSize\t = \t81", "sSliceArray.lSize\t = \t33")
    header = {"MrPhoenixProtocol": [text]}
    assert csa.series_info(header)["NumSlices"] == "33"


def test_series_info_without_protocol_is_empty() -> None:
    assert csa.series_info({}) == {}
    assert csa.series_info({"MrPhoenixProtocol": ["no ascconv here"]}) == {}


def _dataset(image: bytes | None, series: bytes | None, block: int = 0x10) -> Dataset:
    ds = Dataset()
    ds.add_new(0x00290000 | block, "LO", "SIEMENS CSA HEADER")
    if image is not None:
        ds.add_new(0x00290010 | block << 8, "OB", image)
    if series is not None:
        ds.add_new(0x00290020 | block << 8, "OB", series)
    return ds


def test_siemens_fields_from_dataset() -> None:
    image = encode_csa(
        [
            ("B_value", "IS", [700]),
            ("DiffusionDirectionality", "CS", ["NONE"]),
            ("PhaseEncodingDirectionPositive", "IS", [1]),
        ]
    )
    series = encode_csa([("MrPhoenixProtocol", "UN", [_phoenix(n_slices=60)])])
    img, ser, has_image = csa.siemens_fields(_dataset(image, series))
    assert has_image
    assert img == {
        "B_value": 700,
        "DiffusionDirectionality": "NONE",
        "PhaseEncodingDirectionPositive": 1,
    }
    assert ser["NumSlices"] == "60" and ser["OSLevel"] == "VE11C"


def test_private_block_found_by_creator_and_fiona_order() -> None:
    image = encode_csa([("B_value", "IS", [5])])
    # creator in block 0x12: tags (0029,1210) - FIONA's second choice, found either way
    img, _, _ = csa.siemens_fields(_dataset(image, None, block=0x12))
    assert img == {"B_value": 5}
    # no creator at all: FIONA's fixed list (0029,1110) still works
    ds = Dataset()
    ds.add_new(0x00291110, "OB", image)
    assert csa.image_info(csa.image_header(ds)) == {"B_value": 5}


def test_siemens_fields_on_broken_and_missing_elements() -> None:
    assert csa.siemens_fields(Dataset()) == ({}, {}, False)
    img, ser, has_image = csa.siemens_fields(_dataset(b"SV10garbage", b"\x00" * 50))
    assert (img, ser, has_image) == ({}, {}, False)
