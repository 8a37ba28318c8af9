"""collect_status: the one source of the Status page, `fiona status` and the heartbeat POST."""

from __future__ import annotations

import json
from pathlib import Path

from fionagw.config import load_config
from fionagw.ops.jobstate import record_run
from fionagw.ops.status import collect_status
from support.site import write_config


def test_collect_status_is_one_source(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cfg = load_config(config)
    cfg.paths.create()
    record_run(cfg, "detectStudyArrival", True, 0.5, "1 study complete")
    st = collect_status(cfg)
    assert st.down == ["processSingleFile", "storectl"]
    job = next(j for j in st.jobs if j.job == "detectStudyArrival")
    assert job.last is not None and job.last.summary == "1 study complete"
    assert st.disk is not None and st.disk.used_bytes is None and st.disk.free_bytes > 0
    assert collect_status(cfg, du=True).disk.used_bytes > 0  # type: ignore[union-attr]
    d = st.as_dict()
    assert d["down"] == st.down and d["queues"]["arrived jobs"] == 0
    json.dumps(d)  # the web Status page and the heartbeat POST serialize it
