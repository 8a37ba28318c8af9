"""The classifyRules.json engine: operators, negation, references, tag forms, load errors,
SeriesLevel, and the shipped config/classifyRules.json on synthetic studies of each vendor."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from fionagw.classify import Connection, RulesError, RuleSet, read_header, update_series
from fionagw.classify.rules import parse_tag
from support import synth
from support.site import ROOT, SHARED

SHIPPED = ROOT / "config" / "classifyRules.json"
CONN = Connection("SCANNER", "FIONA", "10.0.0.1")


def mr(**elements: Any) -> Dataset:
    """A small MR dataset; keyword arguments become elements."""
    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = "1.2.3", "1.2.3.4", "1.2.3.4.5"
    ds.Modality = "MR"
    ds.Manufacturer = "SIEMENS"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    for key, value in elements.items():
        setattr(ds, key, value)
    return ds


def one(entry: dict[str, Any], *extra: dict[str, Any]) -> RuleSet:
    """A rule set with one rule of type "T" made of the given entries."""
    return RuleSet.from_list([{"type": "T", "rules": [entry, *extra]}])


def hit(
    rules: RuleSet, ds: Dataset, record: dict[str, Any] | None = None, types: tuple[str, ...] = ()
) -> bool:
    return "T" in rules.classify(ds, record or {}, types=types).types


# --- operators ---------------------------------------------------------------------------


def test_regexp_is_default_and_searches() -> None:
    rules = one({"tag": ["0x08", "0x70"], "value": "^SIEM"})
    assert hit(rules, mr())
    assert not hit(rules, mr(Manufacturer="GE MEDICAL SYSTEMS"))
    assert hit(one({"tag": ["0x08", "0x70"], "value": "MENS"}), mr())  # search, not match


def test_regexp_sees_str_of_pydicom_values() -> None:
    ds = mr(PatientName="Doe^Jane", Rows=256, AcquisitionMatrix=[0, 256, 256, 0])
    # a multi-valued string looks like a Python list, as FIONA saw it
    assert hit(
        one({"tag": ["0x08", "0x08"], "value": r"^\['ORIGINAL', 'PRIMARY', 'M', 'ND'\]$"}), ds
    )
    assert hit(one({"tag": ["0x10", "0x10"], "value": r"^Doe\^Jane$"}), ds)
    assert hit(one({"tag": ["0x28", "0x10"], "value": "^256$"}), ds)
    assert hit(one({"tag": ["0x18", "0x1310"], "value": "0, 256, 256, 0"}), ds)


def test_regexp_missing_tag_is_empty_string() -> None:
    assert hit(one({"tag": ["0x08", "0x103e"], "value": "^$"}), mr())
    assert not hit(one({"tag": ["0x08", "0x103e"], "value": "."}), mr())
    assert hit(one({"tag": ["0x08", "0x103e"], "value": ".", "negate": "yes"}), mr())


def test_empty_element_reads_as_empty_not_none() -> None:
    ds = mr()
    ds.add_new(0x00180050, "DS", None)
    assert hit(one({"tag": ["0x18", "0x50"], "value": "^$"}), ds)
    assert not hit(one({"tag": ["0x18", "0x50"], "value": "None"}), ds)


def test_contains_substring_and_membership() -> None:
    ds = mr(ImageType=["ORIGINAL", "PRIMARY", "M", "DIS2D"], SeriesDescription="ep2d_QA_dMRI")
    contains = {"operator": "contains"}
    assert hit(one({"tag": ["0x08", "0x08"], "value": "PRIMARY", **contains}), ds)
    # membership in a MultiValue, as FIONA: "DIS" is not an element of [..., "DIS2D"]
    assert not hit(one({"tag": ["0x08", "0x08"], "value": "DIS", **contains}), ds)
    assert hit(one({"tag": ["SeriesDescription"], "value": "_QA_", **contains}), ds)
    assert hit(one({"tag": ["ClassifyType"], "value": "axial", **contains}), ds, types=("axial",))
    assert not hit(one({"tag": ["ClassifyType"], "value": "axi", **contains}), ds, types=("axial",))
    # numbers: FIONA raised TypeError here; the text is tested instead
    assert hit(
        one({"tag": ["0x18", "0x1310"], "value": "256", **contains}),
        mr(AcquisitionMatrix=[0, 256, 256, 0]),
    )
    assert hit(one({"tag": ["0x28", "0x10"], "value": "25", **contains}), mr(Rows=256))
    assert hit(
        one({"tag": ["0x10", "0x10"], "value": "Jane", **contains}), mr(PatientName="Doe^Jane")
    )
    assert hit(one({"tag": ["0x08", "0x08"], "value": "DIS", "negate": "yes", **contains}), ds)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("==", "256", True),
        ("==", "255", False),
        ("==", "256.0", True),
        ("!=", "256", False),
        ("!=", "255", True),
        ("<", "300", True),
        ("<", "256", False),
        (">", "100", True),
        (">", "256", False),
    ],
)
def test_numeric_operators(op: str, value: str, expected: bool) -> None:
    ds = mr(Rows=256)
    assert hit(one({"tag": ["0x28", "0x10"], "operator": op, "value": value}), ds) is expected
    negated = one({"tag": ["0x28", "0x10"], "operator": op, "value": value, "negate": "yes"})
    assert hit(negated, ds) is not expected


def test_numeric_on_ds_text_values() -> None:
    ds = mr(EchoTime="89.0", RepetitionTime="8000")
    assert hit(one({"tag": ["0x18", "0x81"], "operator": ">", "value": "60"}), ds)
    assert hit(one({"tag": ["EchoTime"], "operator": "<", "value": 100}), ds)


@pytest.mark.parametrize("negate", [False, True])
def test_numeric_non_number_passes_as_fiona(negate: bool, caplog: pytest.LogCaptureFixture) -> None:
    extra = {"negate": "yes"} if negate else {}
    ds = mr(SeriesDescription="abc")
    for op in ("==", "!=", "<", ">"):
        # tag not numeric, tag missing, multi-valued: the entry passes whatever the negation
        assert hit(one({"tag": ["SeriesDescription"], "operator": op, "value": "1", **extra}), ds)
        assert hit(one({"tag": ["0x18", "0x81"], "operator": op, "value": "1", **extra}), ds)
        assert hit(one({"tag": ["0x08", "0x08"], "operator": op, "value": "1", **extra}), ds)
    with caplog.at_level(logging.WARNING):
        rules = one({"tag": ["0x28", "0x10"], "operator": "==", "value": "many", **extra})
    assert "not a number" in caplog.text
    assert hit(rules, mr(Rows=3))


def test_approx_on_pydicom_multivalue() -> None:
    ds = mr(ImageOrientationPatient=[1, 0.00005, 0, 0, 1, 0])
    assert type(ds.ImageOrientationPatient).__name__ == "MultiValue"
    axial = {"tag": ["0x20", "0x37"], "operator": "approx", "value": [1, 0, 0, 0, 1, 0]}
    assert hit(one(axial), ds)
    assert not hit(one(axial), mr(ImageOrientationPatient=[1, 0.001, 0, 0, 1, 0]))
    assert hit(
        one({**axial, "approxLevel": "0.01"}), mr(ImageOrientationPatient=[1, 0.001, 0, 0, 1, 0])
    )
    assert not hit(one({**axial, "negate": "yes"}), ds)
    assert hit(one({**axial, "negate": "yes"}), mr(ImageOrientationPatient=[0, 1, 0, 0, 0, -1]))


def test_approx_edge_cases() -> None:
    axial = {"tag": ["0x20", "0x37"], "operator": "approx", "value": [1, 0, 0, 0, 1, 0]}
    assert not hit(one(axial), mr())  # missing
    assert not hit(one(axial), mr(ImageOrientationPatient=[1, 0, 0, 0, 1]))  # length mismatch
    assert not hit(
        one({"tag": ["0x08", "0x08"], "operator": "approx", "value": [1, 0, 0, 0]}), mr()
    )
    scalar = {"tag": ["0x18", "0x50"], "operator": "approx", "value": 2.5, "approxLevel": 0.05}
    assert hit(one(scalar), mr(SliceThickness="2.52"))
    assert not hit(one(scalar), mr(SliceThickness="2.6"))
    with pytest.raises(RulesError, match="approx needs a number"):
        one({"tag": ["0x20", "0x37"], "operator": "approx", "value": "axial"})


def test_exist_and_notexist() -> None:
    ds = mr(InversionTime=900)
    ds.add_new(0x00180022, "CS", None)  # present but empty still exists
    for op, alias in (("exist", "exists"), ("notexist", "notexists")):
        want = op == "exist"
        for name in (op, alias):
            assert hit(one({"tag": ["0x18", "0x82"], "operator": name}), ds) is want
            assert hit(one({"tag": ["0x18", "0x22"], "operator": name}), ds) is want
            assert hit(one({"tag": ["0x18", "0x83"], "operator": name}), ds) is not want
            assert (
                hit(one({"tag": ["NumSlices"], "operator": name}), ds, {"NumSlices": "5"}) is want
            )
            assert (
                hit(one({"tag": ["0x18", "0x82"], "operator": name, "negate": "yes"}), ds)
                is not want
            )


def test_unknown_operator_fails_even_negated(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        rules = one({"tag": ["0x08", "0x70"], "operator": "like", "value": "SIEMENS"})
    assert "unknown operator 'like'" in caplog.text
    assert not hit(rules, mr())
    assert not hit(
        one({"tag": ["0x08", "0x70"], "operator": "like", "value": "x", "negate": "yes"}), mr()
    )


def test_negate_only_yes() -> None:
    base = {"tag": ["0x08", "0x70"], "value": "^SIEMENS"}
    assert not hit(one({**base, "negate": "yes"}), mr())
    assert hit(one({**base, "negate": "no"}), mr())


# --- rules, references, order ------------------------------------------------------------

A_AND_B = [
    {"type": "A", "id": "A", "rules": [{"tag": ["0x08", "0x70"], "value": "^SIEMENS"}]},
    {
        "type": "B",
        "id": "B",
        "rules": [
            {"tag": ["0x28", "0x10"], "operator": "==", "value": "256"},
            {"tag": ["0x28", "0x11"], "operator": "==", "value": "256"},
        ],
    },
]


def test_all_entries_must_pass_and_file_order() -> None:
    rules = RuleSet.from_list(
        [
            {"type": "second", "rules": [{"tag": ["0x28", "0x10"], "operator": ">", "value": "1"}]},
            {
                "type": "first",
                "rules": [
                    {"tag": ["0x08", "0x70"], "value": "SIEMENS"},
                    {"tag": ["0x08", "0x60"], "value": "^MR$"},
                ],
            },
            {
                "type": "never",
                "rules": [
                    {"tag": ["0x08", "0x70"], "value": "SIEMENS"},
                    {"tag": ["0x08", "0x60"], "value": "^CT$"},
                ],
            },
        ]
    )
    assert rules.classify(mr(Rows=2), {}).types == ["second", "first"]
    assert rules.classify(mr(Rows=2), {}, types=["first", "x"]).types == ["first", "x", "second"]


def test_same_type_rules_are_or() -> None:
    rules = RuleSet.from_list(
        [
            {"type": "T", "rules": [{"tag": ["0x08", "0x70"], "value": "^GE"}]},
            {"type": "T", "rules": [{"tag": ["0x08", "0x70"], "value": "^SIEMENS"}]},
        ]
    )
    assert rules.classify(mr(), {}).types == ["T"]
    assert rules.classify(mr(Manufacturer="GE MEDICAL"), {}).types == ["T"]
    assert rules.classify(mr(Manufacturer="Philips"), {}).types == []


def test_rule_reference_inlines_entries() -> None:
    rules = RuleSet.from_list([*A_AND_B, {"type": "T", "rules": [{"rule": "A"}, {"rule": "B"}]}])
    resolved = rules.resolved()[2]["rules"]
    assert [e["tag"] for e in resolved] == [["0x08", "0x70"], ["0x28", "0x10"], ["0x28", "0x11"]]
    assert "T" in rules.classify(mr(Rows=256, Columns=256), {}).types
    assert "T" not in rules.classify(mr(Rows=256, Columns=128), {}).types


@pytest.mark.parametrize(
    ("rows", "cols", "expected"),
    [(256, 256, False), (256, 128, False), (128, 256, False), (128, 128, True)],
)
def test_notrule_negates_each_entry(rows: int, cols: int, expected: bool) -> None:
    # NOT a AND NOT b (FIONA's semantics), not NOT (a AND b): 256x128 must not pass
    rules = RuleSet.from_list([*A_AND_B, {"type": "T", "rules": [{"notrule": "B"}]}])
    assert all(e.get("negate") == "yes" for e in rules.resolved()[2]["rules"])
    assert ("T" in rules.classify(mr(Rows=rows, Columns=cols), {}).types) is expected


def test_notrule_toggles_negated_entries_and_nests() -> None:
    rules = RuleSet.from_list(
        [
            {
                "type": "N",
                "id": "NOTGE",
                "rules": [{"tag": ["0x08", "0x70"], "value": "^GE", "negate": "yes"}],
            },
            {"type": "W", "id": "WRAP", "rules": [{"rule": "NOTGE"}]},
            {"type": "T", "rules": [{"notrule": "WRAP"}]},
        ]
    )
    assert "negate" not in rules.resolved()[2]["rules"][0]
    assert rules.classify(mr(Manufacturer="GE MEDICAL"), {}).types == ["T"]
    assert rules.classify(mr(), {}).types == ["N", "W"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"type": "T", "id": "X", "rules": [{"rule": "X"}]}], "reference cycle X -> X"),
        (
            [
                {"type": "A", "id": "A", "rules": [{"rule": "B"}]},
                {"type": "B", "id": "B", "rules": [{"notrule": "A"}]},
            ],
            "reference cycle",
        ),
        ([{"type": "T", "rules": [{"rule": "NOPE"}]}], 'rule "NOPE" refers to no rule'),
        (
            [
                {"type": "A", "id": "D", "rules": []},
                {"type": "B", "id": "D", "rules": []},
                {"type": "T", "rules": [{"rule": "D"}]},
            ],
            "ambiguous: rules 0, 1",
        ),
        ({"type": "T"}, "JSON array"),
        ([{"rules": []}], '"type" must be a non-empty string'),
        ([{"type": "T"}], '"rules" must be a list'),
        ([{"type": "T", "rules": [{"value": "x"}]}], 'neither "tag" nor'),
        ([{"type": "T", "rules": [{"tag": ["0x08", "0x70"], "rule": "A"}]}], "only one of"),
        (
            [{"type": "T", "rules": [{"tag": ["0x08", "0x70"], "value": "(unclosed"}]}],
            "bad regular expression",
        ),
        ([{"type": "T", "rules": [{"tag": ["0x08", "0x70"]}]}], 'needs a "value"'),
        (
            [{"type": "T", "rules": [{"tag": ["0xZZ", "0x70"], "value": "x"}]}],
            "is not [group, element",
        ),
        ([{"type": "T", "rules": [{"tag": [], "value": "x"}]}], "list of 1 to 3"),
        ([{"type": "T", "rules": [{"tag": "Manufacturer", "value": "x"}]}], "list of 1 to 3"),
        (
            [{"type": "T", "rules": [{"tag": ["0x8", "0x70", "0", "1"], "value": "x"}]}],
            "list of 1 to 3",
        ),
        ([{"type": "T", "rules": [{"tag": ["0x10000", "0x70"], "value": "x"}]}], "out of range"),
        (
            [
                {
                    "type": "T",
                    "rules": [
                        {
                            "tag": ["0x20", "0x37"],
                            "operator": "approx",
                            "value": [1],
                            "approxLevel": "tiny",
                        }
                    ],
                }
            ],
            "approxLevel",
        ),
    ],
)
def test_load_errors_are_one_line(tmp_path: Path, data: Any, message: str) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RulesError) as info:
        RuleSet.load(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    assert message in text


def test_error_names_rule_index_and_id(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            [{"type": "A", "rules": []}, {"type": "B", "id": "BEE", "rules": [{"rule": "MISSING"}]}]
        )
    )
    with pytest.raises(RulesError, match=r"rule 1 \(BEE\): entry 0: rule \"MISSING\""):
        RuleSet.load(path)


def test_bad_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('[\n  {"type": "T",\n   "rules": [}\n]')
    with pytest.raises(RulesError, match=r"invalid JSON at line 3 column 14"):
        RuleSet.load(path)
    with pytest.raises(RulesError, match="file not found"):
        RuleSet.load(tmp_path / "absent.json")


def test_deep_reference_chain_resolves() -> None:
    data = [{"type": f"t{i}", "id": f"R{i}", "rules": [{"rule": f"R{i + 1}"}]} for i in range(60)]
    data.append({"type": "t60", "id": "R60", "rules": [{"tag": ["0x08", "0x70"], "value": "S"}]})
    rules = RuleSet.from_list(list(reversed(data)))
    assert len(rules.classify(mr(), {}).types) == 61


def test_resolved_is_a_copy() -> None:
    rules = RuleSet.from_list([*A_AND_B, {"type": "T", "rules": [{"rule": "A"}]}])
    first = rules.resolved()
    first[2]["rules"].clear()
    assert rules.resolved()[2]["rules"] == A_AND_B[0]["rules"]


# --- tag forms and values ----------------------------------------------------------------


def test_tag_forms() -> None:
    assert parse_tag(["0x08", "0x70"]).tag == 0x00080070
    assert parse_tag(["8", "112"]).tag == 0x00080070  # base auto-detected like int(x, 0)
    assert parse_tag(["0x0020", "0x0037", "4"]).index == 4
    assert parse_tag(["Manufacturer"]).tag == 0x00080070
    assert parse_tag(["AcquisitionLength"]).tag is None  # a series-JSON key, not a keyword


def test_named_tag_record_first_then_keyword() -> None:
    rules = one({"tag": ["Manufacturer"], "value": "^GE$"})
    assert hit(rules, mr(), {"Manufacturer": "GE"})  # the record wins
    assert not hit(rules, mr(), {})
    assert hit(one({"tag": ["Manufacturer"], "value": "^SIEMENS$"}), mr(), {})  # value, not element
    assert not hit(one({"tag": ["NoSuchKey"], "operator": "exist"}), mr(), {})


def test_indexed_tag() -> None:
    ds = mr(ImageOrientationPatient=[0, 1, 0, 0, 0, -1], Rows=64)
    assert hit(one({"tag": ["0x20", "0x37", "5"], "operator": "==", "value": "-1"}), ds)
    assert hit(one({"tag": ["0x20", "0x37", "1"], "value": "^1"}), ds)
    assert hit(one({"tag": ["0x20", "0x37", "9"], "operator": "notexist"}), ds)  # out of range
    assert hit(one({"tag": ["0x28", "0x10", "0"], "value": "^64$"}), ds)  # single value, i=0
    assert hit(one({"tag": ["0x28", "0x10", "1"], "operator": "notexist"}), ds)


def test_value_may_be_a_tag() -> None:
    square = one({"tag": ["0x28", "0x10"], "operator": "==", "value": ["0x28", "0x11"]})
    assert hit(square, mr(Rows=256, Columns=256))
    assert not hit(square, mr(Rows=256, Columns=128))
    bigger = one({"tag": ["0x28", "0x10"], "operator": ">", "value": ["Columns"]})
    assert hit(bigger, mr(Rows=512, Columns=256))
    same_text = one({"tag": ["SeriesDescription"], "value": ["ProtocolName"]})
    assert hit(same_text, mr(SeriesDescription="t1_mprage", ProtocolName="t1_mp"))
    assert not hit(same_text, mr(SeriesDescription="t1_mprage", ProtocolName="t2"))
    # an absent value-tag falls back to the literal list (FIONA)
    assert (
        hit(
            one({"tag": ["0x28", "0x10"], "operator": "contains", "value": ["0x99", "0x99"]}),
            mr(Rows=1),
            types=(),
        )
        is False
    )


def test_numimages_is_alias_of_numslices() -> None:
    rules = one({"tag": ["NumImages"], "value": "^81$"})
    assert hit(rules, mr(), {"NumSlices": "81"})
    assert not hit(rules, mr(), {"NumSlices": "60"})
    assert hit(rules, mr(), {"NumImages": "81", "NumSlices": "60"})  # own key first


# --- ClassifyType and SeriesLevel through update_series -----------------------------------


def _series(rules: RuleSet, images: list[Dataset]) -> dict[str, Any]:
    record: dict[str, Any] | None = None
    for n, ds in enumerate(images, start=1):
        record = update_series(record, ds, CONN, rules, n)
    assert record is not None
    return record


def _image(i: int, **elements: Any) -> Dataset:
    return mr(SOPInstanceUID=f"1.2.3.4.{i}", InstanceNumber=i, **elements)


def test_series_level_removed_for_good() -> None:
    rules = RuleSet.from_list(
        [
            {
                "type": "ALL256",
                "check": "SeriesLevel",
                "rules": [{"tag": ["0x28", "0x10"], "operator": "==", "value": "256"}],
            }
        ]
    )
    assert _series(rules, [_image(1, Rows=256), _image(2, Rows=256)])["ClassifyType"] == ["ALL256"]
    record = _series(rules, [_image(1, Rows=256), _image(2, Rows=128), _image(3, Rows=256)])
    assert record["ClassifyType"] == []
    assert record["ClassifyTypeSeriesLevelFailed"] == ["ALL256"]
    again = update_series(record, _image(1, Rows=256), CONN, rules, 3)  # resend: stays out
    assert again == record


def test_series_level_same_type_rules_are_or() -> None:
    rules = RuleSet.from_list(
        [
            {
                "type": "SQUARE",
                "check": "SeriesLevel",
                "rules": [{"tag": ["0x28", "0x10"], "operator": "==", "value": "256"}],
            },
            {
                "type": "SQUARE",
                "check": "SeriesLevel",
                "rules": [{"tag": ["0x28", "0x10"], "operator": "==", "value": "128"}],
            },
        ]
    )
    record = _series(rules, [_image(1, Rows=256), _image(2, Rows=128)])
    assert record["ClassifyType"] == ["SQUARE"]
    assert "ClassifyTypeSeriesLevelFailed" not in record


def test_classifytype_rules_see_this_images_types() -> None:
    # FIONA saw only the previous images' types (one image late); here the localizer is
    # recognised on the image that completes the three planes, even after the plane rules.
    rules = RuleSet.load(SHARED / "fixtures" / "fiona-upstream" / "classifyRules.json")
    planes = [[0, 1, 0, 0, 0, -1], [1, 0, 0, 0, 0, -1], [1, 0, 0, 0, 1, 0]]
    images = [_image(i, ImageOrientationPatient=p) for i, p in enumerate(planes, start=1)]
    assert "localizer" not in _series(rules, images[:2])["ClassifyType"]
    assert "localizer" in _series(rules, images)["ClassifyType"]
    single = RuleSet.from_list(
        [
            {
                "type": "ax",
                "rules": [{"tag": ["0x20", "0x37"], "operator": "approx", "value": planes[2]}],
            },
            {
                "type": "derived",
                "rules": [{"tag": ["ClassifyType"], "operator": "contains", "value": "later"}],
            },
            {
                "type": "later",
                "rules": [{"tag": ["ClassifyType"], "operator": "contains", "value": "ax"}],
            },
        ]
    )
    assert single.classify(images[2], {}).types == ["ax", "later", "derived"]


# --- the shipped rules -------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return RuleSet.load(SHIPPED)


def test_shipped_rules_load_and_keep_upstream_ids(shipped: RuleSet) -> None:
    by_id = {r.get("id"): r["type"] for r in shipped.resolved()}
    assert by_id["GEBYMANUFACTURER"] == "GE"
    assert by_id["SIEMENSBYMANUFACTURER"] == "SIEMENS"
    assert by_id["PHILIPSBYMANUFACTURER"] == "PHILIPS"
    assert by_id["MOSAIC"] == "mosaic" and by_id["ORIGINAL"] == "original"
    assert by_id["ORIENTATIONAX"] == "axial" and by_id["ORIENTATIONSAG"] == "sagittal"
    assert by_id["ORIENTATIONCOR"] == "coronal" and by_id["DIFFUSION"] == "DIFFUSION"
    types = {r["type"] for r in shipped.resolved()}
    assert {"T1", "T2", "FLAIR", "DWI", "SWI", "fMRI", "CT", "SC", "SR", "localizer"} <= types
    assert not any(t.startswith("ABCD") for t in types)


def classify_study(rules: RuleSet, vendor: str, n: int = 6) -> dict[str, list[str]]:
    records: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    specs = synth.standard_mr_series(vendor, n)
    for _, ds in synth.study_datasets(vendor=vendor, series=specs, rows=64, cols=64):
        key = ds.SeriesDescription
        counts[key] = counts.get(key, 0) + 1
        records[key] = update_series(records.get(key), ds, CONN, rules, counts[key])
    return {key: rec["ClassifyType"] for key, rec in records.items()}


# expected types (all must be present) and forbidden ones, per series position
EXPECTED = [
    ({"localizer", "axial", "sagittal", "coronal", "original"}, {"T1", "T2", "DWI", "fMRI"}),
    ({"T1", "sagittal", "original"}, {"T2", "FLAIR", "DWI", "fMRI", "SWI", "localizer"}),
    ({"T2", "axial"}, {"T1", "FLAIR", "DWI", "SWI", "fMRI", "localizer"}),
    ({"FLAIR", "axial"}, {"T1", "T2", "DWI", "SWI", "fMRI"}),
    ({"DWI", "DIFFUSION", "axial"}, {"T1", "T2", "FLAIR", "SWI", "fMRI"}),
    ({"SWI", "axial"}, {"T1", "T2", "FLAIR", "DWI", "fMRI"}),
    ({"fMRI", "axial"}, {"T1", "T2", "FLAIR", "DWI", "DIFFUSION", "SWI"}),
]


@pytest.mark.parametrize("vendor", ["SIEMENS", "GE", "PHILIPS"])
def test_shipped_rules_on_standard_studies(shipped: RuleSet, vendor: str) -> None:
    result = classify_study(shipped, vendor)
    specs = synth.standard_mr_series(vendor, 6)
    assert len(result) == len(EXPECTED) == len(specs)
    for spec, (want, never) in zip(specs, EXPECTED, strict=True):
        got = set(result[spec.description])
        assert vendor in got and "MR" in got, (spec.description, got)
        assert want <= got, (spec.description, sorted(got))
        assert not never & got, (spec.description, sorted(got))
        assert not {"CT", "SC", "SR"} & got
        assert {"GE", "SIEMENS", "PHILIPS"} & got == {vendor}
        mosaic = vendor == "SIEMENS" and spec.mosaic > 0
        assert ("mosaic" in got) is mosaic, (spec.description, sorted(got))


@pytest.mark.parametrize("kind", ["ct", "sc", "sr"])
def test_shipped_rules_ct_sc_sr(shipped: RuleSet, tmp_path: Path, kind: str) -> None:
    make = {"ct": synth.ct_study, "sc": synth.secondary_capture, "sr": synth.structured_report}[
        kind
    ]
    paths = make(tmp_path, "GE", **({"n_images": 3} if kind == "ct" else {}))
    record = None
    for n, path in enumerate(paths, start=1):
        record = update_series(record, read_header(path), CONN, shipped, n)
    assert record is not None
    got = set(record["ClassifyType"])
    expected = {
        "ct": {"CT", "axial", "original", "GE"},
        "sc": {"SC", "CHECKBURNEDINFO", "GE"},
        "sr": {"SR", "GE"},
    }[kind]
    assert expected <= got, sorted(got)
    assert not ({"CT", "SC", "SR", "MR", "T1", "T2"} - expected) & got, sorted(got)
