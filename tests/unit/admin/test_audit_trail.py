"""The audit trail: chained records, `fiona audit verify` naming an edited or removed record,
the transfers' audit() writing into it, and the CLI's account changes recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fionagw.admin import audit
from fionagw.config import SiteConfig, load_config
from fionagw.transfers.audit import audit as transfer_audit
from support.site import write_config


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, SiteConfig]:
    config = write_config(tmp_path)
    return config, load_config(config)


def _fill(cfg: SiteConfig, n: int = 4) -> None:
    for i in range(n):
        audit.record(cfg, "retry", f"request-{i}", "queued again", who="alice", origin="10.0.0.9")


def test_records_are_chained_and_verify(site: tuple[Path, SiteConfig]) -> None:
    _, cfg = site
    _fill(cfg)
    transfer_audit(cfg, "bob", "cancel", "cancelled", request="r-5", study_uid="1.2.3", project="P")
    lines = [json.loads(x) for x in audit.audit_file(cfg).read_text().splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3, 4, 5]
    assert lines[0]["prev"] == audit.GENESIS
    assert all(r["prev"] != audit.GENESIS for r in lines[1:])
    assert lines[4]["who"] == lines[4]["user"] == "bob" and lines[4]["object"] == "r-5"
    assert lines[0]["from"] == "10.0.0.9" and lines[4]["from"].startswith("cli@")
    assert lines[0]["when"].endswith("Z")
    assert oct(audit.audit_file(cfg).stat().st_mode & 0o777) == "0o640"
    assert audit.verify(cfg) == (5, [])


def _rewrite(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(change(lines)))


def test_one_edited_byte_is_named(site: tuple[Path, SiteConfig]) -> None:
    _, cfg = site
    _fill(cfg)
    path = audit.audit_file(cfg)

    def edit(lines: list[bytes]) -> list[bytes]:
        lines[1] = lines[1].replace(b"request-1", b"request-7")
        return lines

    _rewrite(path, edit)
    count, problems = audit.verify(cfg)
    assert count == 4 and [p.seq for p in problems] == [2] and "edited" in problems[0].text


def test_a_broken_json_byte_is_named(site: tuple[Path, SiteConfig]) -> None:
    _, cfg = site
    _fill(cfg)

    def edit(lines: list[bytes]) -> list[bytes]:
        lines[2] = lines[2][:5] + b"\x00" + lines[2][6:]
        return lines

    _rewrite(audit.audit_file(cfg), edit)
    assert [p.seq for p in audit.verify(cfg)[1]] == [3]


def test_an_edit_with_a_recomputed_hash_is_named(site: tuple[Path, SiteConfig]) -> None:
    _, cfg = site
    _fill(cfg)

    def edit(lines: list[bytes]) -> list[bytes]:
        rec = json.loads(lines[0])
        rec["who"] = rec["user"] = "mallory"
        rec["hash"] = __import__("hashlib").sha256(audit._canonical(rec)).hexdigest()
        lines[0] = json.dumps(rec).encode() + b"\n"
        return lines

    _rewrite(audit.audit_file(cfg), edit)
    assert [p.seq for p in audit.verify(cfg)[1]] == [1]


@pytest.mark.parametrize("removed", [0, 2, 3])
def test_a_removed_record_is_named(site: tuple[Path, SiteConfig], removed: int) -> None:
    _, cfg = site
    _fill(cfg)
    _rewrite(audit.audit_file(cfg), lambda lines: lines[:removed] + lines[removed + 1 :])
    problems = audit.verify(cfg)[1]
    assert problems and problems[0].seq == removed + 1 and "removed" in problems[0].text


def _fiona(config: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """`fiona ARGS` in-process (the CLI's own main), with its exit code, stdout and stderr."""
    import contextlib
    import io
    import sys

    from fionagw.cli.fiona import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--config", str(config), *args])
    finally:
        sys.stdin = old
    return code, out.getvalue(), err.getvalue()


def test_cli_verify_list_and_user_changes_recorded(site: tuple[Path, SiteConfig]) -> None:
    config, cfg = site
    code, _, err = _fiona(
        config, "user", "add", "carol", "--password-stdin", stdin="carol-pass-1\n"
    )
    assert code == 0, err
    assert _fiona(config, "user", "grant", "carol", "admin")[0] == 0
    assert _fiona(config, "user", "remove", "carol")[0] == 0
    code, out, _ = _fiona(config, "audit", "list", "--format", "json")
    records = [json.loads(x) for x in out.splitlines()]
    assert [(x["action"], x["object"]) for x in records] == [
        ("user-add", "carol"), ("user-grant", "carol"), ("user-remove", "carol")
    ]  # fmt: skip
    assert "carol-pass-1" not in audit.audit_file(cfg).read_text()
    code, out, _ = _fiona(config, "audit", "verify")
    assert code == 0 and "OK, 3 records" in out
    path = audit.audit_file(cfg)
    data = bytearray(path.read_bytes())
    second = data.index(b"\n") + 1
    data[second + data[second:].index(b"user-grant") + 5] ^= 0x01  # one byte of record 2
    path.write_bytes(bytes(data))
    code, out, err = _fiona(config, "audit", "verify")
    assert code == 1 and "record 2: edited" in err, (out, err)


def test_fields_of_the_trail_are_refused(site: tuple[Path, SiteConfig]) -> None:
    with pytest.raises(ValueError):
        audit.record(site[1], "x", "y", hash="forged")


def test_csv_has_a_header_and_details(site: tuple[Path, SiteConfig]) -> None:
    _, cfg = site
    transfer_audit(cfg, "bob", "cancel", "cancelled", request="r-5", project="P")
    rows = list(audit.csv_rows(audit.search(cfg, "r-5")))
    assert (
        rows[0][0] == "seq"
        and rows[1][2] == "bob"
        and json.loads(rows[1][7])
        == {
            "request": "r-5",
            "project": "P",
        }
    )
    assert audit.search(cfg, "nothing-like-this") == []


def test_cli_coupling_list_import_is_recorded(tmp_path: Path) -> None:
    from support.web import web_config

    config = web_config(tmp_path)
    csv_file = tmp_path / "coupling.csv"
    csv_file.write_text(
        "AccessionNumber,ProjectName,subjectid,eventname\nACC1,DEMO,DEMO001,baseline\n"
    )
    code, out, err = _fiona(config, "coupling-list", "import", str(csv_file))
    assert code == 0, err
    [rec] = audit.search(load_config(config))
    assert (rec["action"], rec["object"], rec["entries"]) == ("coupling-upload", "coupling-list", 1)
    assert "ACC1" not in json.dumps(rec)  # never the accession number
