"""The incoming list: FIONA's "<epoch> <StudyInstanceUID>" lines kept, entries updated in place
and pruned by age."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fionagw.arrival import incoming
from fionagw.config import SiteConfig
from support.arrival_site import arrival_site


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return arrival_site(tmp_path)


# -- incoming list and events ------------------------------------------------------------------


def test_incoming_list_upsert_and_prune(site: SiteConfig) -> None:
    path = site.paths.incoming_list
    path.write_text("1000 1.2.3 legacy FIONA line\n\nnot-an-epoch whatever\n")
    e1, prev = incoming.upsert(site, "1.2.840.1", {"images": 3, "series_count": 1}, now=5000)
    assert prev is None and e1.info["first_arrived"] == 5000
    incoming.upsert(site, "1.2.840.2", {"images": 1}, now=5001)
    e3, prev = incoming.upsert(site, "1.2.840.1", {"images": 5, "series_count": 2}, now=6000)
    assert prev is not None and prev.info["images"] == 3
    lines = path.read_text().splitlines()
    assert lines[0] == "1000 1.2.3 legacy FIONA line" and lines[1] == "not-an-epoch whatever"
    assert lines[2].startswith("5001 1.2.840.2 {")
    assert lines[3].startswith("6000 1.2.840.1 {") and len(lines) == 4
    assert json.loads(lines[3].split(" ", 2)[2]) == {
        "images": 5,
        "series_count": 2,
        "first_arrived": 5000,
    }
    assert incoming.find(site, "1.2.840.1") == e3
    dropped = incoming.remove_old(site, days=1, now=6000 + 86400 - 500)
    assert sorted(e.epoch for e in dropped) == [1000, 5001]
    assert [e.study_uid for e in incoming.read_entries(site)] == ["", "1.2.840.1"]
    assert incoming.remove(site, "1.2.840.1") and not incoming.remove(site, "1.2.840.1")
