"""The query/retrieve sources and MPPS settings from config.json: FIONA's SCANNER* and
OTHERSCANNER keys, our named pacs.sources, and one-line errors naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fionagw.config import ConfigError, load_config
from fionagw.config.pacs import load_pacs, mpps_enabled
from support.site import write_config

SCANNER = {
    "SCANNERIP": "127.0.0.1",
    "SCANNERPORT": "4006",  # FIONA configs quote ports
    "SCANNERAETITLE": "MRC35",
    "SCANNERTYPE": "SIEMENS",
    "OTHERSCANNER": [{"SCANNERIP": "127.0.0.2", "SCANNERPORT": 104, "SCANNERAETITLE": "CT1"}],
}


def _load(tmp_path: Path, **keys: object):  # type: ignore[no-untyped-def]
    cfg = load_config(write_config(tmp_path, **keys))
    return cfg, load_pacs(cfg)


def test_fiona_scanner_keys_are_sources(tmp_path: Path) -> None:
    cfg, pacs = _load(tmp_path, **SCANNER, MPPSPORT="4007", MPPSMODE="mppson")
    assert not cfg.warnings
    assert list(pacs.sources) == ["scanner", "scanner2"]
    s = pacs.source()
    assert (s.name, s.host, s.port, s.called_aetitle, s.calling_aetitle) == (
        "scanner",
        "127.0.0.1",
        4006,
        "MRC35",
        "FIONA",
    )
    assert s.scanner_type == "SIEMENS" and s.retrieve == "move"
    assert pacs.source("scanner2").called_aetitle == "CT1"
    assert pacs.move_destination == "FIONA"
    assert pacs.mpps.port == 4007 and pacs.mpps.enabled
    cfg.paths.create()
    assert mpps_enabled(cfg, pacs)
    cfg.paths.enabled_file.write_text("10")
    assert not mpps_enabled(cfg, pacs)
    cfg.paths.enabled_file.write_text("11")
    assert mpps_enabled(cfg, pacs)


def test_named_sources_and_default(tmp_path: Path) -> None:
    _, pacs = _load(
        tmp_path,
        **SCANNER,
        pacs={
            "default": "clinical",
            "move_destination": "FIONARECV",
            "sources": {
                "clinical": {
                    "host": "127.0.0.1",
                    "port": 11112,
                    "called_aetitle": "PACS",
                    "calling_aetitle": "FIONAQR",
                    "timeout": 5,
                    "retrieve": "get",
                }
            },
        },
    )
    s = pacs.source()
    assert (s.name, s.calling_aetitle, s.timeout, s.retrieve) == ("clinical", "FIONAQR", 5, "get")
    assert pacs.move_destination == "FIONARECV"
    assert not pacs.mpps.enabled
    with pytest.raises(KeyError, match="known: clinical, scanner, scanner2"):
        pacs.source("nope")


def test_no_sources_is_fine(tmp_path: Path) -> None:
    _, pacs = _load(tmp_path)
    assert pacs.sources == {} and pacs.default == "" and not pacs.warnings
    with pytest.raises(KeyError, match="no PACS source configured"):
        pacs.source()


def test_a_leftover_scanner_key_is_a_warning(tmp_path: Path) -> None:
    _, pacs = _load(tmp_path, SCANNERIP="10.0.0.1")
    assert pacs.sources == {}
    assert [str(w).split(": ", 1)[1] for w in pacs.warnings] == [
        "SCANNERIP: scanner not used as a PACS source: SCANNERPORT, SCANNERAETITLE not set"
    ]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({**SCANNER, "SCANNERPORT": "x"}, "SCANNERPORT: expected an integer port"),
        ({**SCANNER, "SCANNERTYPE": "TOSHIBA"}, "SCANNERTYPE: must be one of"),
        ({**SCANNER, "OTHERSCANNER": ["x"]}, "OTHERSCANNER[0]: expected an object"),
        ({"MPPSMODE": "on"}, "MPPSMODE: must be mppson or mppsoff"),
        ({"pacs": {"sources": {"c": {"host": "h", "port": 1}}}}, "pacs.sources.c.called_aetitle"),
        (
            {
                "pacs": {
                    "sources": {
                        "c": {
                            "host": "127.0.0.1",
                            "port": 1,
                            "called_aetitle": "A",
                            "retrieve": "push",
                        }
                    }
                }
            },
            "pacs.sources.c.retrieve: must be one of move, get",
        ),
        ({"pacs": {"default": "x"}}, "pacs.default: no such source 'x'"),
        ({"pacs": {"colour": "red"}}, "pacs.colour: unknown key"),
        (
            {**SCANNER, "pacs": {"sources": {"scanner": {}}}},
            "pacs.sources.scanner: the name is taken",
        ),
    ],
)
def test_mistakes_are_one_line(tmp_path: Path, keys: dict, message: str) -> None:
    cfg = load_config(write_config(tmp_path, **keys)) if "pacs" not in keys else None
    if cfg is None:
        path = write_config(tmp_path)
        data = json.loads(path.read_text())
        data.update(keys)
        path.write_text(json.dumps(data))
        cfg = load_config(path)
    with pytest.raises(ConfigError) as err:
        load_pacs(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow  # two bin/fiona runs
def test_check_config_names_the_sources_and_refuses_mistakes(tmp_path: Path) -> None:
    from support.site import run_bin

    path = write_config(tmp_path, **SCANNER, MPPSPORT=4007, MPPSMODE="mppson")
    r = run_bin("fiona", "check-config", config=path)
    assert r.returncode == 0, r.stderr
    assert "PACS sources: scanner, scanner2, MPPS on port 4007" in r.stdout
    path = write_config(tmp_path, MPPSMODE="maybe")
    r = run_bin("fiona", "check-config", config=path)
    assert r.returncode == 2
    assert r.stderr.strip().endswith("MPPSMODE: must be mppson or mppsoff, got 'maybe'")


def test_fiona_run_supervises_mpps_only_when_it_is_on(tmp_path: Path) -> None:
    from fionagw.ops.gateway import _mpps_child

    cfg = load_config(write_config(tmp_path, MPPSPORT=4007, MPPSMODE="mppson"))
    cfg.paths.create()
    (child,) = _mpps_child(cfg)
    assert child.name == "mppsctl" and "foreground" in child.argv
    cfg.paths.enabled_file.write_text("10")
    assert _mpps_child(cfg) == []
    (tmp_path / "off").mkdir()
    off = load_config(write_config(tmp_path / "off", MPPSPORT=4007))
    assert _mpps_child(off) == []
