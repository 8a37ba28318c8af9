"""FIONA's upstream rules (fixtures/fiona-upstream/classifyRules.json): every one of the 71
rules gets a dataset that must match it and one that must not.

Each case is written by reading the rule: ``hit`` lists the header values that satisfy it and
``miss`` the change that must break it. Datasets go through update_series, so named tags
(AcquisitionMatrix, NumImages -> NumSlices from the CSA protocol, PhaseEncodingDirectionPositive
from the image CSA, SequenceType, ...) come from the series record as in the daemon.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from fionagw.classify import Connection, RuleSet, update_series
from support.site import SHARED
from support.synth import encode_csa, phoenix_protocol

UPSTREAM = SHARED / "fixtures" / "fiona-upstream" / "classifyRules.json"
CONN = Connection("SCANNER", "FIONA", "10.0.0.1")

SIE = {"vendor": "SIEMENS", "image_type": ["ORIGINAL", "PRIMARY", "M", "ND"]}
SIE_NORM = {"vendor": "SIEMENS", "image_type": ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"]}
GE = {"vendor": "GE MEDICAL SYSTEMS", "image_type": ["ORIGINAL", "PRIMARY", "OTHER"]}
PHI = {
    "vendor": "Philips Medical Systems",
    "image_type": ["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"],
}

# Siemens ABCD families (values read off the rules)
T1_SIE = {**SIE, "rows": 256, "pe_steps": 255, "matrix": [0, 256, 256, 0], "seq": "*tfl3d1_16ns"}
T2_SIE = {**SIE, "rows": 256, "pe_steps": 227, "matrix": [0, 256, 256, 0], "seq": "*spc_200ns"}
DFM_SIE = {
    **SIE,
    "rows": 140,
    "pe_steps": 105,
    "matrix": [140, 0, 0, 140],
    "seq": "*ep_b0",
    "num_slices": 81,
}
BOLD_SIE = {
    **SIE,
    "rows": 720,
    "pe_steps": 90,
    "matrix": [90, 0, 0, 90],
    "seq": "*epfid2d1_90",
    "num_slices": 60,
}
FFM_SIE = {
    **SIE,
    "rows": 90,
    "pe_steps": 90,
    "matrix": [90, 0, 0, 90],
    "seq": "*epse2d1_90",
    "num_slices": 60,
}
MOSAIC_TYPE = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND", "MOSAIC"]
PHI_FMRI = {**PHI, "matrix": [92, 0, 0, 89], "seq_type": "FEEPI"}
PHI_DTI = {**PHI, "matrix": [140, 0, 0, 141]}
GE_MUX2 = {**GE, "pulse": "research/ABCD/muxepi2", "matrix": [140, 0, 0, 140]}
GE_MUX = {**GE, "pulse": "research/ABCD/muxepi", "matrix": [90, 0, 0, 90]}

# index: (hit, miss). ``miss`` is applied on top of ``hit``. "types" are the series'
# ClassifyType so far (for the ClassifyType-based localizer rule).
CASES: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {
    0: (GE, SIE),
    1: (SIE, GE),
    2: (PHI, SIE),
    3: (
        {**SIE, "image_type": ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]},
        {"vendor": "GE MEDICAL SYSTEMS"},
    ),
    4: (SIE, {"image_type": ["DERIVED", "PRIMARY", "M"]}),
    5: ({**SIE, "types": ["axial", "coronal", "sagittal"]}, {"types": ["axial", "coronal"]}),
    6: (
        {
            **GE,
            "matrix": [0, 256, 256, 0],
            "pulse": "research/ABCD/mprage_promo",
            "scan_options": ["FAST_GEMS"],
        },
        {"scan_options": ["FILTERED_GEMS", "FAST_GEMS"]},
    ),
    7: (
        {
            **GE,
            "matrix": [0, 256, 256, 0],
            "pulse": "research/ABCD/mprage_promo",
            "scan_options": ["FILTERED_GEMS", "FAST_GEMS"],
        },
        {"scan_options": ["FAST_GEMS"]},
    ),
    8: (
        {**PHI, "matrix": [0, 256, 256, 0], "scanning": "GR", "variant": "MP"},
        {"image_type": ["ORIGINAL", "PRIMARY", "PROJECTION IMAGE"]},
    ),
    9: (T1_SIE | {"image_type": SIE_NORM["image_type"]}, {"rows": 512}),
    10: (T1_SIE, {"image_type": SIE_NORM["image_type"]}),
    11: (T2_SIE, {"image_type": SIE_NORM["image_type"]}),
    12: (T2_SIE | {"image_type": SIE_NORM["image_type"]}, {"image_type": SIE["image_type"]}),
    13: ({**SIE, "coils": "HE1-4"}, {"coils": "HEA;HEP"}),
    14: ({**DFM_SIE, "pe_positive": 0}, {"pe_positive": 1}),
    15: ({**DFM_SIE, "pe_positive": 1}, {"pe_positive": 0}),
    16: (
        {
            **DFM_SIE,
            "rows": 1260,
            "seq": "*ep_b1000#1",
            "image_type": MOSAIC_TYPE,
            "description": "ABCD_dMRI",
        },
        {"description": "ABCD_QA_dMRI"},
    ),
    17: ({**BOLD_SIE, "acq_length": "TA 05:11"}, {"acq_length": "TA 05:33"}),
    18: ({**SIE, "sop_class": "1.3.12.2.1107.5.9.1", "num_slices": 5}, {"num_slices": 1}),
    19: ({**SIE, "sop_class": "1.3.12.2.1107.5.9.1", "num_slices": 1}, {"num_slices": 5}),
    20: ({**SIE, "seq": "*fl3d8r"}, {"seq": "*fl3d8r_ns"}),
    21: ({**BOLD_SIE, "acq_length": "TA 05:33"}, {"acq_length": "TA 05:11"}),
    22: ({**BOLD_SIE, "acq_length": "TA 06:00"}, {"acq_length": "TA 05:00"}),
    23: ({**BOLD_SIE, "acq_length": "TA 05:00"}, {"acq_length": "TA 06:00"}),
    24: ({**FFM_SIE, "pe_positive": 0}, {"pe_positive": 1}),
    25: ({**BOLD_SIE, "acq_length": "TA 06:44"}, {"acq_length": "TA 05:11"}),
    26: (
        {**SIE, "matrix": [64, 0, 0, 64], "seq": "*epfid2d1_64", "acq_length": "TA 06:44"},
        {"seq": "*epfid2d1_90"},
    ),
    27: (
        {
            **SIE,
            "seq": "*fl2d1",
            "pe_steps": 233,
            "coils": "HE1-4",
            "description": "coil_uncombined",
        },
        {"coils": "HEA;HEP"},
    ),
    28: (
        {
            **SIE,
            "image_type": MOSAIC_TYPE,
            "matrix": [140, 0, 0, 140],
            "seq": "*ep_b1000",
            "description": "ABCD_QA_dMRI",
        },
        {"description": "QA_dMRI"},
    ),
    29: (
        {**PHI_FMRI, "seq_type": "SEEPI", "description": "fMRI_FM_P"},
        {"description": "fMRI_FM_A"},
    ),
    30: ({**PHI_FMRI, "temporal": 383}, {"temporal": 445}),
    31: ({**PHI_DTI, "seq_type": "DwiSE", "description": "DTI_dir1"}, {"description": "DTI_dir5"}),
    32: (
        {**PHI_DTI, "seq_type": "SEEPI", "description": "Diff_FM_P"},
        {"description": "Diff_FM_A"},
    ),
    33: (
        {**PHI_DTI, "seq_type": "SEEPI", "description": "Diff_FM_A"},
        {"description": "Diff_FM_P"},
    ),
    34: (
        {**PHI_DTI, "seq_type": "DwiSE", "description": "Diff_FM_P"},
        {"description": "Diff_FM_A"},
    ),
    35: (
        {**PHI_DTI, "seq_type": "DwiSE", "description": "Diff_FM_A"},
        {"description": "Diff_FM_P"},
    ),
    36: ({**PHI_FMRI, "temporal": 445}, {"temporal": 383}),
    37: ({**PHI_FMRI, "temporal": 370}, {"temporal": 411}),
    38: ({**PHI_FMRI, "temporal": 411}, {"temporal": 370}),
    39: (
        {**PHI, "matrix": [0, 256, 256, 0], "scanning": "SE", "variant": "SK"},
        {"image_type": ["ORIGINAL", "PRIMARY", "PROJECTION IMAGE"]},
    ),
    40: (
        {**PHI_FMRI, "seq_type": "SEEPI", "description": "fMRI_FM_A"},
        {"description": "fMRI_FM_P"},
    ),
    41: ({**FFM_SIE, "pe_positive": 1}, {"pe_positive": 0}),
    42: (
        {**PHI, "matrix": [64, 0, 0, 63], "seq_type": "FEEPI", "temporal": 200},
        {"temporal": 199},
    ),
    43: ({**PHI_FMRI, "temporal": 395}, {"temporal": 383}),
    44: ({**PHI_DTI, "seq_type": "DwiSE", "description": "ABCD_QA"}, {"description": "QA_ABCD"}),
    45: (
        {**PHI, "matrix": [128, 0, 0, 128], "seq_type": "T1FFE", "thickness": "2"},
        {"thickness": "3"},
    ),
    46: ({**GE_MUX2, "images": 2916}, {"images": 2915}),
    47: ({**GE_MUX2, "images": 8424}, {"images": 8423}),
    48: ({**GE_MUX2, "images": 16929, "description": "ABCD_DTI_ORIG"}, {"description": "REV_POL"}),
    49: ({**GE_MUX2, "images": 189}, {"images": 188}),
    50: ({**GE_MUX2, "images": 16929, "description": "DTI_REV_POL"}, {"description": "DTI_ORIG"}),
    51: ({**GE_MUX2, "images": 648}, {"images": 647}),
    52: (
        {
            **GE,
            "pulse": "research/ABCD/epi_pepolar",
            "matrix": [90, 0, 0, 90],
            "user_b3": "2.000000",
            "locations": 60,
            "temporal": 2,
        },
        {"temporal": 1},
    ),
    53: ({**GE_MUX2, "images": 297}, {"images": 296}),
    54: ({**GE_MUX2, "images": 810}, {"images": 811}),
    55: (
        {
            **GE,
            "pulse": "research/ABCD/epi_pepolar",
            "matrix": [64, 0, 0, 64],
            "images": 6000,
            "tr": "2000",
        },
        {"tr": "1500"},
    ),
    56: (
        {**GE, "pulse": "research/ABCD/efgre3d", "matrix": [0, 32, 32, 0], "images": 4224},
        {"images": 4223},
    ),
    57: (
        {**GE, "pulse": "research/ABCD/efgre3d", "matrix": [0, 32, 32, 0], "images": 924},
        {"images": 923},
    ),
    58: ({**GE_MUX, "duration": 312800384.0}, {"duration": 300000000.0}),
    59: ({**GE_MUX, "duration": 335200416.0}, {"duration": 312800384.0}),
    60: ({**GE_MUX, "duration": 362400448.0}, {"duration": 335200416.0}),
    61: ({**GE_MUX, "duration": 302400384.0}, {"duration": 362400448.0}),
    62: ({**GE_MUX, "images": 3750}, {"images": 3751}),
    63: ({**GE_MUX, "images": 22500}, {"images": 22501}),
    64: (
        {
            **GE,
            "matrix": [0, 256, 256, 0],
            "pulse": "research/ABCD/3dfse_promo",
            "scan_options": ["FILTERED_GEMS"],
        },
        {"scan_options": ["FAST_GEMS"]},
    ),
    65: (
        {
            **GE,
            "matrix": [0, 256, 256, 0],
            "pulse": "research/ABCD/3dfse_promo",
            "scan_options": ["FAST_GEMS"],
        },
        {"scan_options": ["FILTERED_GEMS"]},
    ),
    66: ({**GE, "pulse": "epi2_pepolarFLEX"}, {"vendor": "SIEMENS"}),
    67: ({**SIE, "seq": "*ep_b1000#1"}, {"vendor": "GE MEDICAL SYSTEMS"}),
    68: ({**SIE, "iop": [0, 1, 0, 0, 0, -1]}, {"iop": [1, 0, 0, 0, 1, 0]}),
    69: ({**SIE, "iop": [1, 0.0003, 0, 0, 1, -0.0003]}, {"iop": [1, 0.001, 0, 0, 1, 0]}),
    70: ({**SIE, "iop": [1, 0, 0, 0, 0, -1]}, {"iop": [0, 1, 0, 0, 0, -1]}),
}


def build(case: dict[str, Any]) -> Dataset:
    """A header with exactly the elements a case names (plus the three UIDs)."""
    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        "1.2.826.1",
        "1.2.826.1.2",
        "1.2.826.1.2.3",
    )
    ds.SOPClassUID = case.get("sop_class", "1.2.840.10008.5.1.4.1.1.4")
    ds.Modality = "MR"
    ds.Manufacturer = case["vendor"]
    ds.ImageType = case["image_type"]
    simple = {
        "rows": ("Rows", None),
        "pe_steps": ("NumberOfPhaseEncodingSteps", None),
        "matrix": ("AcquisitionMatrix", None),
        "seq": ("SequenceName", None),
        "scan_options": ("ScanOptions", None),
        "scanning": ("ScanningSequence", None),
        "variant": ("SequenceVariant", None),
        "description": ("SeriesDescription", None),
        "temporal": ("NumberOfTemporalPositions", None),
        "thickness": ("SliceThickness", None),
        "images": ("ImagesInAcquisition", None),
        "tr": ("RepetitionTime", None),
        "iop": ("ImageOrientationPatient", None),
    }
    for key, (keyword, _) in simple.items():
        if key in case:
            setattr(ds, keyword, case[key])
    private = {
        "coils": (0x0051100F, "LO"),
        "acq_length": (0x0051100A, "LO"),
        "pulse": (0x0019109C, "LO"),
        "seq_type": (0x20011020, "LO"),
        "user_b3": (0x001910B3, "DS"),
        "locations": (0x0021104F, "SS"),
        "duration": (0x0019105A, "FL"),
    }
    for key, (tag, vr) in private.items():
        if key in case:
            ds.add_new(tag, vr, case[key])
    if "pe_positive" in case:
        ds.add_new(
            0x00291010,
            "OB",
            encode_csa([("PhaseEncodingDirectionPositive", "IS", [case["pe_positive"]])]),
        )
    if "num_slices" in case:
        protocol = phoenix_protocol(
            protocol_name="p", sequence_file="s", n_slices=case["num_slices"], wip_uuid="u"
        )
        ds.add_new(0x00291020, "OB", encode_csa([("MrPhoenixProtocol", "UN", [protocol])]))
    return ds


@pytest.fixture(scope="module")
def upstream() -> RuleSet:
    return RuleSet.load(UPSTREAM)


def test_upstream_file_loads(upstream: RuleSet) -> None:
    resolved = upstream.resolved()
    assert len(resolved) == len(upstream) == 71
    assert not any("rule" in e or "notrule" in e for r in resolved for e in r["rules"])
    # MOSAIC inlined SIEMENSBYMANUFACTURER; ABCD-DTI (16): 1 + 1 + 2 inlined entries + 6 own
    assert resolved[3]["rules"][1] == {"tag": ["0x08", "0x70"], "value": "^SIEMENS"}
    assert len(resolved[16]["rules"]) == 10
    assert set(CASES) == set(range(71))


def _classify(rules: RuleSet, case: dict[str, Any]) -> list[str]:
    stored = {"ClassifyType": list(case["types"])} if "types" in case else None
    record = update_series(stored, build(case), CONN, rules, 1)
    return record["ClassifyType"]


@pytest.mark.parametrize("index", range(71))
def test_each_upstream_rule(upstream: RuleSet, index: int) -> None:
    rule = upstream.resolved()[index]
    alone = RuleSet.from_list([rule])  # this rule and no other of the same type
    hit, miss = CASES[index]
    missed = {**hit, **miss}
    assert _classify(alone, hit) == [*hit.get("types", []), rule["type"]]
    assert rule["type"] not in _classify(alone, missed)
    # and within the whole file: the type appears for the hit, no rule gives it for the miss
    assert rule["type"] in _classify(upstream, hit)
    assert rule["type"] not in _classify(upstream, missed)
