"""The b-value and gradient direction of one diffusion image, from whichever encoding it has.

In the order tried (the first that gives a b-value wins), after dcm2niix's tag table
(console/nii_dicom.cpp) and the vendors' conformance statements:

* standard: DiffusionBValue (0018,9087), DiffusionGradientOrientation (0018,9089), also inside
  MR Diffusion Sequence (0018,9117) of an enhanced multi-frame file's per-frame (5200,9230) or
  shared (5200,9229) functional groups (one entry per frame);
* Siemens: the CSA image header's ``B_value`` / ``DiffusionGradientDirection`` (classify/csa.py),
  older files' (0019,100C) / (0019,100E) of "SIEMENS MR HEADER";
* GE: "GEMS_PARM_01" (0043,1039), whose first value is the b-value (values above 10,000 carry
  an offset of 10^9, as dcm2niix's set_bValGE undoes), direction in "GEMS_ACQU_01"
  (0019,10BB..BD);
* Philips: "Philips Imaging DD 001" (2001,1003) b-factor, direction in "Philips MR Imaging DD
  001" (2005,10B0..B2).

Derived maps (ImageType DERIVED with ADC, TRACEW, FA or EXP) and trace images (directionality
ISOTROPIC) are not acquisitions: :func:`is_derived` tells them apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset

from fionagw.classify import csa
from fionagw.classify.elements import element_value

Direction = tuple[float, float, float]

_DERIVED_KINDS = ("ADC", "TRACEW", "FA", "EXP", "TRACE")
_PRIVATE = {
    # (group, creator, element offsets)
    "siemens_b": (0x0019, "SIEMENS MR HEADER", (0x0C,)),
    "siemens_dir": (0x0019, "SIEMENS MR HEADER", (0x0E,)),
    "ge_b": (0x0043, "GEMS_PARM_01", (0x39,)),
    "ge_dir": (0x0019, "GEMS_ACQU_01", (0xBB, 0xBC, 0xBD)),
    "philips_b": (0x2001, "Philips Imaging DD 001", (0x03,)),
    "philips_dir": (0x2005, "Philips MR Imaging DD 001", (0xB0, 0xB1, 0xB2)),
}
B_VALUE, ORIENTATION, DIRECTIONALITY = 0x00189087, 0x00189089, 0x00189075
MR_DIFFUSION_SEQ, PER_FRAME, SHARED = 0x00189117, 0x52009230, 0x52009229


def _value(ds: Dataset, tag: int) -> Any:
    if tag not in ds._dict:  # pydicom's get() pays an exception per absent tag
        return None
    try:
        return element_value(ds, tag)
    except Exception:  # noqa: BLE001 - a broken element is an absent one here
        return None


def _floats(value: Any) -> list[float]:
    if value is None:
        return []
    if isinstance(value, bytes | bytearray):
        return []
    items = value if isinstance(value, list | tuple) or hasattr(value, "__iter__") else [value]
    if isinstance(value, str):
        items = value.split("\\")
    out = []
    for v in items:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            return []
    return out


def _private(ds: Dataset, key: str) -> list[float]:
    """The values of a private element named in _PRIVATE, wherever its creator's block is."""
    group, creator, offsets = _PRIVATE[key]
    for block in range(0x10, 0x100):
        creator_tag = (group << 16) | block
        if creator_tag not in ds._dict:
            if block > 0x12:
                break
            continue
        if str(_value(ds, creator_tag) or "").strip() != creator:
            continue
        values: list[float] = []
        for offset in offsets:
            found = _floats(_value(ds, (group << 16) | (block << 8) | offset))
            if not found:
                return []
            values.extend(found if len(offsets) == 1 else found[:1])
        return values
    return []


def _direction(values: list[float]) -> Direction | None:
    return (values[0], values[1], values[2]) if len(values) >= 3 else None


def _standard(ds: Dataset) -> tuple[float, Direction | None] | None:
    b = _floats(_value(ds, B_VALUE))
    if not b:
        return None
    return b[0], _direction(_floats(_value(ds, ORIENTATION)))


def _from_sequence(item: Dataset) -> tuple[float, Direction | None] | None:
    """An MR Diffusion Sequence item: b-value, and the orientation inside its own sequence."""
    b = _floats(_value(item, B_VALUE))
    if not b:
        return None
    direction = _direction(_floats(_value(item, ORIENTATION)))
    nested = _value(item, 0x00189076)  # Diffusion Gradient Direction Sequence
    if direction is None and nested:
        direction = _direction(_floats(_value(nested[0], ORIENTATION)))
    return b[0], direction


def frames(ds: Dataset) -> Iterator[tuple[float, Direction | None]]:
    """(b-value, direction) of every frame of an enhanced multi-frame image (none otherwise)."""
    shared = _value(ds, SHARED)
    shared_entry = None
    if shared:
        seq = _value(shared[0], MR_DIFFUSION_SEQ)
        shared_entry = _from_sequence(seq[0]) if seq else None
    for group in _value(ds, PER_FRAME) or []:
        seq = _value(group, MR_DIFFUSION_SEQ)
        entry = _from_sequence(seq[0]) if seq else None
        if entry is None:
            entry = shared_entry
        if entry is not None:
            yield entry


def image_diffusion(ds: Dataset) -> tuple[float, Direction | None, str] | None:
    """(b-value, direction or None, encoding) of a classic image; None if it has none."""
    found = _standard(ds)
    if found:
        b, direction = found
        if direction is None and b > 0:  # older Philips: the standard b-value, a private direction
            direction = _nonzero(_private(ds, "philips_dir")) or _nonzero(_private(ds, "ge_dir"))
        return b, direction, "standard"
    image = csa.image_info(csa.image_header(ds))
    if "B_value" in image:
        b = _floats(image["B_value"])
        direction = _direction(_floats(image.get("DiffusionGradientDirection")))
        if b:
            return b[0], direction, "siemens-csa"
    b = _private(ds, "siemens_b")
    if b:
        return b[0], _direction(_private(ds, "siemens_dir")), "siemens"
    b = _private(ds, "ge_b")
    if b:
        value = b[0] % 1_000_000_000 if b[0] >= 1_000_000_000 else b[0]
        return value, _nonzero(_private(ds, "ge_dir")), "ge"
    b = _private(ds, "philips_b")
    if b:
        return b[0], _nonzero(_private(ds, "philips_dir")), "philips"
    return None


def _nonzero(values: list[float]) -> Direction | None:
    """GE and Philips write (0, 0, 0) for a b0 or a trace image: no direction."""
    d = _direction(values)
    return d if d and any(abs(v) > 1e-6 for v in d) else None


def is_derived(ds: Dataset) -> bool:
    """An ADC/FA/trace map or an isotropic (trace) image: not counted as an acquisition."""
    image_type = [str(v).upper() for v in (_value(ds, 0x00080008) or [])]
    if isinstance(_value(ds, 0x00080008), str):
        image_type = str(_value(ds, 0x00080008)).upper().split("\\")
    if "DERIVED" in image_type and any(k in image_type for k in _DERIVED_KINDS):
        return True
    return str(_value(ds, DIRECTIONALITY) or "").strip().upper() == "ISOTROPIC"
