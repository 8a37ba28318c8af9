"""The Review inventory (fionagw.transfers.review_inventory): tag paths, counts, caps, concurrency."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
from pathlib import Path

import pydicom
import pytest

from fionagw.transfers import review_inventory as ri
from support import synth


@pytest.fixture
def mr_files(tmp_path: Path) -> list[Path]:
    return synth.standard_mr_study(
        tmp_path / "mr",
        vendor="SIEMENS",
        n_per_series=2,
        patient_id="DEMO001",
        patient_name="DEMO001",
    )


def test_counts_every_tag_with_its_values(tmp_path: Path, mr_files: list[Path]) -> None:
    inv_file = tmp_path / "review" / "DEMO.json"
    ri.record_files(inv_file, mr_files)
    inv = ri.load_inventory(inv_file)
    n = len(mr_files)
    assert inv["files"] == n and inv["version"] == 1 and inv["updated"]
    tags = inv["tags"]
    name = tags["(0010,0010)"]
    assert (name["keyword"], name["vr"], name["count"], name["files"]) == (
        "PatientName",
        "PN",
        n,
        n,
    )
    assert name["values"] == {"DEMO001": n} and name["other"] == 0
    # one value per series: the distinct series descriptions, each counted per file
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in mr_files]
    expected: dict[str, int] = {}
    for ds in headers:
        expected[ds.SeriesDescription] = expected.get(ds.SeriesDescription, 0) + 1
    assert tags["(0008,103E)"]["values"] == expected
    # the file meta group is reviewed too
    assert tags["(0002,0010)"]["keyword"] == "TransferSyntaxUID"
    # private elements by creator and offset, whatever block they were in
    csa = tags['(0029,"SIEMENS CSA HEADER",10)']
    assert csa["vr"] == "OB" and csa["files"] == n
    assert all(v.startswith("<binary ") for v in csa["values"])
    assert tags['(0029,"SIEMENS CSA HEADER")']["keyword"] == "PrivateCreator"
    assert "(0029,1010)" not in tags and "(0029,0010)" not in tags
    assert "(7FE0,0010)" not in tags  # pixel data never read
    assert (inv_file.parent / "DEMO.seen").read_text().count("\n") == n


def test_sequences_are_paths(tmp_path: Path) -> None:
    (sr,) = synth.structured_report(tmp_path / "sr")
    inv_file = tmp_path / "SR.json"
    ri.record_files(inv_file, [sr])
    tags = ri.load_inventory(inv_file)["tags"]
    assert tags["(0040,A730)"]["values"] == {"<1 item>": 1}
    assert tags["(0040,A730)>(0040,A160)"]["values"] == {"Synthetic report: no findings.": 1}
    assert tags["(0040,A730)>(0040,A160)"]["keyword"] == "TextValue"
    assert tags["(0040,A730)>(0040,A043)>(0008,0104)"]["values"] == {"Finding": 1}
    assert tags["(0040,A043)>(0008,0100)"]["values"] == {"11528-7": 1}


def test_values_are_capped_and_distinct_values_limited() -> None:
    inv = ri.empty_inventory()
    for i in range(ri.MAX_DISTINCT + 5):
        ri.merge_file(
            inv,
            {
                "(0020,4000)": {
                    "keyword": "ImageComments",
                    "vr": "LT",
                    "values": {f"comment {i}": 1, "same": 1},
                }
            },
        )
    entry = inv["tags"]["(0020,4000)"]
    assert len(entry["values"]) == ri.MAX_DISTINCT
    assert entry["values"]["same"] == ri.MAX_DISTINCT + 5  # a value already kept keeps counting
    assert entry["other"] == 6 and entry["count"] == 2 * (ri.MAX_DISTINCT + 5)
    assert inv["files"] == ri.MAX_DISTINCT + 5
    row = ri.inventory_rows(inv)[0]
    assert row.distinct == ri.MAX_DISTINCT + 1


def test_long_values_are_cut_at_64_characters(tmp_path: Path) -> None:
    (f,) = synth.secondary_capture(tmp_path / "sc")
    ds = pydicom.dcmread(f)
    ds.ImageComments = "x" * 300
    ds.save_as(f)
    ri.record_files(tmp_path / "P.json", [f])
    assert ri.load_inventory(tmp_path / "P.json")["tags"]["(0020,4000)"]["values"] == {"x" * 64: 1}


def test_same_files_again_are_not_counted_twice(tmp_path: Path, mr_files: list[Path]) -> None:
    inv_file = tmp_path / "DEMO.json"
    ri.record_files(inv_file, mr_files[:5])
    ri.record_files(inv_file, mr_files)  # a study sent again with a late series
    inv = ri.load_inventory(inv_file)
    assert inv["files"] == len(mr_files)
    assert inv["tags"]["(0010,0020)"]["values"] == {"DEMO001": len(mr_files)}


def test_unreadable_files_are_skipped_and_bad_inventory_is_one_line(
    tmp_path: Path, mr_files: list[Path]
) -> None:
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    inv_file = tmp_path / "DEMO.json"
    ri.record_files(inv_file, [junk, mr_files[0]])
    assert ri.load_inventory(inv_file)["files"] == 1
    inv_file.write_text("{broken")
    with pytest.raises(ri.ReviewInventoryError) as info:
        ri.record_files(inv_file, mr_files[1:2])
    assert str(info.value).startswith(f"{inv_file}: unreadable inventory") and "\n" not in str(
        info.value
    )


def _record(args: tuple[str, list[str]]) -> None:
    ri.record_files(Path(args[0]), [Path(p) for p in args[1]])


@pytest.mark.slow
def test_concurrent_transfers_lose_no_counts(tmp_path: Path, mr_files: list[Path]) -> None:
    inv_file = tmp_path / "DEMO.json"
    chunks = [[str(p) for p in mr_files[i::4]] for i in range(4)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.map(_record, [(str(inv_file), c) for c in chunks])
    inv = ri.load_inventory(inv_file)
    assert inv["files"] == len(mr_files)
    assert inv["tags"]["(0008,0018)"]["count"] == len(mr_files)
    assert len(inv["tags"]["(0008,0018)"]["values"]) == len(mr_files)


def test_rows_search_and_csv(tmp_path: Path, mr_files: list[Path]) -> None:
    inv_file = tmp_path / "DEMO.json"
    ri.record_files(inv_file, mr_files)
    inv = ri.load_inventory(inv_file)
    rows = ri.inventory_rows(inv, "patientname")
    assert [r.path for r in rows] == ["(0010,0010)"]
    assert [r.path for r in ri.inventory_rows(inv, "demo001")] == ["(0010,0010)", "(0010,0020)"]
    assert [r.path for r in ri.inventory_rows(inv, "siemens csa 10")][
        0
    ] == '(0029,"SIEMENS CSA HEADER",10)'
    table = list(csv.reader(io.StringIO(ri.rows_csv(ri.inventory_rows(inv)))))
    assert table[0] == ["tag", "keyword", "vr", "value", "count", "files_with_tag"]
    assert [
        "(0010,0010)",
        "PatientName",
        "PN",
        "DEMO001",
        str(len(mr_files)),
        str(len(mr_files)),
    ] in table
    positions = [r for r in table if r[0] == "(0020,0032)"]
    assert positions and all(
        not r[3].startswith("'") for r in positions
    )  # signed numbers stay numbers
    assert sum(int(r[4]) for r in positions) == len(mr_files)


def test_csv_values_cannot_become_formulas() -> None:
    inv = ri.empty_inventory()
    ri.merge_file(
        inv,
        {
            "(0008,1030)": {
                "keyword": "StudyDescription",
                "vr": "LO",
                "values": {'=HYPERLINK("http://x")': 1, "-1+2": 1, "-12.5": 1},
            }
        },
    )
    values = [r[3] for r in csv.reader(io.StringIO(ri.rows_csv(ri.inventory_rows(inv))))][1:]
    assert sorted(values) == sorted(['\'=HYPERLINK("http://x")', "'-1+2", "-12.5"])


def test_inventory_path_refuses_odd_project_names(tmp_path: Path) -> None:
    from fionagw.config import load_config
    from support.site import write_config

    cfg = load_config(write_config(tmp_path))
    assert ri.inventory_path(cfg, "DEMO") == cfg.datadir / "review" / "DEMO.json"
    for bad in ("", "../x", ".hidden", "a/b"):
        with pytest.raises(ValueError):
            ri.inventory_path(cfg, bad)
    assert json.loads(json.dumps(ri.empty_inventory()))["tags"] == {}
