"""The crontab template rendered for a checkout: paths, config and site filled in."""

from __future__ import annotations

from pathlib import Path

from fionagw.ops.crontab import job_lines, programs, render
from support.site import write_config


def test_render_fills_paths_config_and_site(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = render(config, "SITEB", home=Path("/opt/fiona gw"))
    lines = job_lines(text)
    assert len(lines) >= 13
    for line in lines:
        assert "@FIONA_HOME@" not in line.command
        assert line.command.count("'/opt/fiona gw'/bin/") == 1
        assert f"--config {config}" in line.command
        assert line.bare_command.endswith(" SITEB")
        assert ">" not in line.bare_command and "sleep" not in line.bare_command
    assert {"heartbeat", "clearOldFiles", "clearStaleLinks", "detectStudyArrival"} <= set(
        programs(text)
    )
    sched = {ln.bare_command.split("/bin/")[1].split()[0]: ln.schedule for ln in lines}
    assert sched["heartbeat"] == "* * * * *"
    assert sched["clearOldFiles"] == "30 * * * *"
    assert sched["clearStaleLinks"] == "2 3 * * *"
    assert sum("detectStudyArrival" in ln.command for ln in lines) == 4
