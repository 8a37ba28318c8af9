"""A running gateway (receiver + classifier daemons) whose projects send to an Orthanc peer as
the research PACS, and the cron-job runner the send and reconciliation tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fionagw.config import SiteConfig, load_config
from support.site import run_bin, write_config


def pacs_gateway(
    tmp_path: Path,
    orthanc: Any,
    projects_yml: str,
    *,
    max_attempts: int = 4,
    make_config: Callable[..., Path] = write_config,
) -> Iterator[SiteConfig]:
    """Yield the config of a gateway whose destination "research-pacs" is ``orthanc``; the
    daemons are stopped afterwards (a fixture body: ``yield from pacs_gateway(...)``)."""
    projects = tmp_path / "projects.yml"
    projects.write_text(projects_yml)
    config = make_config(
        tmp_path,
        arrival={"quiet_seconds": 1},
        tracker={"projects_file": str(projects)},
        destinations={
            "research-pacs": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": orthanc.dicom_port,
                "called_aetitle": orthanc.aet,
                "calling_aetitle": "FIONA",
            }
        },
        sending={"max_attempts": max_attempts, "retry_base_seconds": 1, "retry_max_seconds": 2},
    )
    for program in ("processSingleFile", "storectl"):
        r = run_bin(program, "start", config=config)
        assert r.returncode == 0, r.stderr + r.stdout
    yield load_config(config)
    for program in ("storectl", "processSingleFile"):
        run_bin(program, "stop", config=config)


def job(cfg: SiteConfig, program: str, *args: str) -> str:
    """Run one cron job of the gateway to its end; its stdout (it must exit 0)."""
    r = run_bin(program, *args, config=cfg.config_file, timeout=300)
    assert r.returncode == 0, f"{program}: {r.stderr}"
    return r.stdout
