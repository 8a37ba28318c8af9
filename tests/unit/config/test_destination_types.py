"""Destination types are pluggable: a type registers how its config section is parsed, and
load_config validates its sections like the built-in ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from fionagw.config import (
    ConfigError,
    SectionReader,
    SiteConfig,
    destination_types,
    load_config,
    register_destination_type,
)
from fionagw.config import destinations as registry
from fionagw.send import SendContext, SendResult, load_destinations
from fionagw.send.base import Destination
from support.site import write_config


class Pigeon(Destination):
    type = "pigeon"

    def __init__(self, name: str, loft: str, birds: int) -> None:
        super().__init__(name)
        self.loft, self.birds = loft, birds

    def send_study(self, files, context: SendContext) -> SendResult:  # type: ignore[no-untyped-def]
        return SendResult(sent=len(files))

    def check(self) -> str:
        return f"pigeon loft {self.loft}: {self.birds} birds ready"

    def describe(self) -> str:
        return f"pigeon {self.loft}"


@dataclass(frozen=True)
class PigeonSettings:
    name: str
    loft: str
    birds: int
    type: ClassVar[str] = "pigeon"

    def destination(self) -> Pigeon:
        return Pigeon(self.name, self.loft, self.birds)


def parse_pigeon(name: str, r: SectionReader, site: SiteConfig) -> PigeonSettings:
    birds = r.get("birds", int, 1)
    if birds < 1:
        raise r.error("birds", f"at least one bird, got {birds}")
    return PigeonSettings(name, r.get("loft", str, site.aetitle), birds)


@pytest.fixture
def pigeons(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pigeon type, registered for this test only."""
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))
    register_destination_type("pigeon", ("loft", "birds"), parse_pigeon)


def test_a_registered_type_is_parsed_at_load_and_sends(tmp_path: Path, pigeons: None) -> None:
    assert destination_types() == ["dicom", "folder", "https", "pigeon", "sftp"]
    cfg = load_config(
        write_config(
            tmp_path,
            DICOMAETITLE="GW",
            destinations={
                "coop": {"type": "pigeon", "birds": "3"},
                "out": {"type": "folder", "path": "out"},
            },
        )
    )
    assert cfg.destinations["coop"] == PigeonSettings("coop", "GW", 3)  # the site's AE title
    dest = load_destinations(cfg)["coop"]
    assert isinstance(dest, Pigeon) and dest.check() == "pigeon loft GW: 3 birds ready"
    assert (
        dest.send_study([tmp_path / "a", tmp_path / "b"], SendContext("P", "p", "", "1")).sent == 2
    )


@pytest.mark.parametrize(
    ("spec", "key", "problem"),
    [
        ({"birds": 0}, "destinations.coop.birds", "at least one bird, got 0"),
        ({"birds": "many"}, "destinations.coop.birds", 'expected an integer, got "many"'),
        (
            {"seeds": 1},
            "destinations.coop.seeds",
            "unknown key for a pigeon destination (known: birds, loft)",
        ),
    ],
)
def test_a_registered_types_errors_name_the_key(
    tmp_path: Path, pigeons: None, spec: dict, key: str, problem: str
) -> None:
    config = write_config(tmp_path, destinations={"coop": {"type": "pigeon", **spec}})
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert str(err.value) == f"{config.resolve()}: {key}: {problem}"


def test_an_unregistered_type_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, destinations={"coop": {"type": "pigeon"}})
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert str(err.value) == (
        f"{config.resolve()}: destinations.coop.type: unknown type 'pigeon' (known: dicom, folder, https, sftp)"
    )


def test_loading_a_config_does_not_import_the_dicom_library(tmp_path: Path) -> None:
    """Every cron job loads the config: a dicom destination is parsed without pynetdicom."""
    import subprocess
    import sys

    from support.site import ROOT

    config = write_config(
        tmp_path,
        destinations={
            "pacs": {"type": "dicom", "host": "127.0.0.1", "port": 104, "called_aetitle": "P"}
        },
    )
    probe = (
        "import sys; from fionagw.config import load_config; "
        f"cfg = load_config({str(config)!r}); "
        "print(cfg.destinations['pacs'].port, 'pynetdicom' in sys.modules, 'pydicom' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT / "lib")},
        check=True,
    )
    assert out.stdout.split() == ["104", "False", "False"]
