"""Cron job locks: one copy per job, a second copy exits 0, and the holder's sidecar
(pid, start time) is read back and cleaned up once stale."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fionagw.config import SiteConfig
from fionagw.ops.locks import cron_lock, info_path, lock_info
from support.arrival_site import arrival_site


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return arrival_site(tmp_path)


# -- cron locks --------------------------------------------------------------------------------


def test_cron_lock_and_lock_info(site: SiteConfig) -> None:
    assert lock_info(site, "detectStudyArrival") is None
    with cron_lock(site, "detectStudyArrival") as held:
        assert held.acquired
        assert held.path == site.paths.pids / "detectStudyArrival.lock"
        info = lock_info(site, "detectStudyArrival")
        assert info is not None and info.pid == os.getpid() and info.alive()
        assert 0 <= info.age_s() < 5
        other = cron_lock(site, "detectStudyArrival", exit_if_busy=False)
        with other:
            assert not other.acquired
        with pytest.raises(SystemExit) as exc:
            with cron_lock(site, "detectStudyArrival"):
                raise AssertionError("body must not run while another copy holds the lock")
        assert exc.value.code == 0
        with cron_lock(site, "removeOldEntries") as unrelated:  # another job: its own lock
            assert unrelated.acquired
    assert lock_info(site, "detectStudyArrival") is None
    assert not info_path(site, "detectStudyArrival").exists()
    # a sidecar left by a killed holder is stale once the lock is free
    info_path(site, "detectStudyArrival").write_text(
        json.dumps({"job": "detectStudyArrival", "site": "", "pid": 999999, "started": 1.0})
    )
    assert lock_info(site, "detectStudyArrival") is None
    assert not info_path(site, "detectStudyArrival").exists()
