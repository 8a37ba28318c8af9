"""load_config: nested keys named in errors, per-site overrides, an unknown site, and the
shipped config/config.json valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from fionagw.config import ConfigError, load_config
from support.site import ROOT, write_config


def test_nested_key_is_named(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, receiver={"allowed_ips": ["10.0.0.300"]})
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert err.value.key == "receiver.allowed_ips" and "10.0.0.300" in str(err.value)


def test_site_overrides_and_unknown_site(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, SITES={"PROJ1": {"DATADIR": str(tmp_path / "proj1"), "DICOMPORT": 11999}}
    )
    site = load_config(cfg, "PROJ1")
    assert (
        site.datadir == tmp_path / "proj1" and site.dicom_port == 11999 and site.aetitle == "FIONA"
    )
    assert site.paths.pidfile("storescpd").name == "storescpdPROJ1.pid"
    with pytest.raises(ConfigError, match="SITES.NOPE: no such site"):
        load_config(cfg, "NOPE")


def test_shipped_config_is_valid() -> None:
    cfg = load_config(ROOT / "config" / "config.json")
    assert cfg.dicom_port == 11112 and cfg.datadir == ROOT / "data"
