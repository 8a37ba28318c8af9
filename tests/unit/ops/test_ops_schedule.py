"""The scheduler of `fiona run`: cron/fiona.crontab parsed, and its jobs run as cron runs them."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.ops.crontab import TEMPLATE, job_lines, render
from fionagw.ops.jobstate import last_run, run_outcome
from fionagw.ops.schedule import (
    CRON_PATH,
    CronSpec,
    ScheduleError,
    Scheduler,
    load_schedule,
    parse_crontab,
    supervised_daemon_line,
)
from support.site import BIN, wait_for, write_config


def test_fields() -> None:
    at = datetime(2025, 3, 14, 12, 0, 30)
    assert CronSpec.parse("*/15 * * * *").matches(datetime(2025, 3, 14, 12, 45))
    assert not CronSpec.parse("*/15 * * * *").matches(datetime(2025, 3, 14, 12, 46))
    assert CronSpec.parse("1,5-7,20-30/5 * * * *").next_minute(at) == datetime(2025, 3, 14, 12, 1)
    assert CronSpec.parse("5/20 * * * *").next_minute(at) == datetime(2025, 3, 14, 12, 5)
    assert CronSpec.parse("0 0 * * mon-fri").next_minute(at) == datetime(2025, 3, 17, 0, 0)
    sunday = datetime(2025, 3, 16, 0, 0)
    assert CronSpec.parse("0 0 * * 7").next_minute(at) == sunday
    assert CronSpec.parse("0 0 * * sun").next_minute(at) == sunday
    assert CronSpec.parse("0 0 1 jan,Mar *").next_minute(at) == datetime(2026, 1, 1, 0, 0)
    for bad, field in (
        ("60 * * * *", "minute field '60'"),
        ("*/0 * * * *", "minute field '\\*/0'"),
        ("* x * * *", "hour field 'x'"),
        ("0 0 0 * *", "day-of-month field '0'"),
        ("0 0 * 13 *", "month field '13'"),
    ):
        with pytest.raises(ValueError, match=field):
            CronSpec.parse(bad)


def test_next_minute_and_cron_day_rule() -> None:
    at = datetime(2025, 3, 14, 12, 0, 30)  # a Friday
    assert CronSpec.parse("* * * * *").next_minute(at) == datetime(2025, 3, 14, 12, 1)
    assert CronSpec.parse("30 * * * *").next_minute(at) == datetime(2025, 3, 14, 12, 30)
    assert CronSpec.parse("2 3 * * *").next_minute(at) == datetime(2025, 3, 15, 3, 2)
    assert CronSpec.parse("0 */4 * * *").next_minute(at) == datetime(2025, 3, 14, 16, 0)
    assert CronSpec.parse("0 0 1 1 *").next_minute(at) == datetime(2026, 1, 1, 0, 0)
    # day of month OR day of week when both are restricted: the 20th, or the next Monday (17th)
    assert CronSpec.parse("0 0 20 * mon").next_minute(at) == datetime(2025, 3, 17, 0, 0)
    # only day of week restricted: Mondays only
    assert CronSpec.parse("0 0 * * 1").next_minute(at) == datetime(2025, 3, 17, 0, 0)
    assert CronSpec.parse("0 0 29 2 *").next_minute(at) == datetime(2028, 2, 29, 0, 0)


def test_the_crontab_parses_into_the_installed_lines(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cfg = load_config(config)
    sched = load_schedule(cfg.config_file, "")
    installed = job_lines(render(cfg.config_file, ""))
    assert len(sched.entries) == len(installed) > 5  # every line of the one schedule, nothing else
    by_program: dict[str, list] = {}
    for e in sched.entries:
        assert "@FIONA_HOME@" not in e.command and ">" not in e.command and "sleep" not in e.command
        assert f"--config {config}" in e.command, e.command
        by_program.setdefault(e.program, []).append(e)
    # FIONA's four arrival runs a minute: "sleep N;" is an offset into the minute
    assert sorted(e.offset_s for e in by_program["detectStudyArrival"]) == [0, 15, 30, 45]
    argv = by_program["detectStudyArrival"][0].argv()
    assert argv[0].endswith("/bin/detectStudyArrival") and argv[1:] == ["--config", str(config)]
    # fiona run supervises the daemons itself: their keep-alive lines are skipped, nothing else
    skip = supervised_daemon_line(["storectl", "processSingleFile"])
    assert sorted(e.program for e in sched.entries if skip(e)) == ["processSingleFile", "storectl"]
    # a site is passed on as the crontab would
    assert load_schedule(cfg.config_file, "NORTH").entries[0].argv()[-1] == "NORTH"
    assert TEMPLATE.name == "fiona.crontab"


def test_offsets_within_the_minute() -> None:
    sched = parse_crontab(
        "* * * * * sleep 45; /x/bin/detectStudyArrival >/dev/null 2>&1\n"
        "* * * * * sleep 15; /x/bin/detectStudyArrival >/dev/null 2>&1\n"
    )
    at = datetime(2025, 3, 14, 12, 0, 30).timestamp()
    late, early = sched.entries
    assert late.next_run(at) == datetime(2025, 3, 14, 12, 0, 45).timestamp()
    assert early.next_run(at) == datetime(2025, 3, 14, 12, 1, 15).timestamp()


def test_bad_lines_name_the_line() -> None:
    with pytest.raises(ScheduleError, match=r"line 2: minute field '61' is not valid"):
        parse_crontab("# ok\n61 * * * * /bin/true\n")
    with pytest.raises(ScheduleError, match="line 1: expected five time fields"):
        parse_crontab("* * * /bin/true\n")
    with pytest.raises(ScheduleError, match="unknown macro"):
        parse_crontab("@sometimes /bin/true\n")
    sched = parse_crontab('MAILTO=""\n@hourly /bin/true\n@reboot /bin/true\n')
    assert sched.env == {"MAILTO": ""} and sched.entries[0].spec == CronSpec.parse("0 * * * *")
    assert sched.entries[1].spec is None


def _fast_clock(minutes_per_second: float = 60.0):  # type: ignore[no-untyped-def]
    """Real time sped up, starting one second before a minute boundary (jobs are real processes)."""
    t0 = time.time()
    base = (t0 // 60 + 1) * 60 - 1
    return lambda: base + (time.time() - t0) * minutes_per_second


def _processes_with(marker: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace"
                ):
                    found.append(int(d.name))
            except OSError:
                pass
    return found


@pytest.mark.slow
def test_jobs_run_with_cron_environment_one_copy_per_line(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="fionagw.scheduler")
    env_out = tmp_path / "env.json"
    starts = tmp_path / "starts"
    text = (
        f"GREETING=hello\n"
        f"* * * * * /usr/bin/python3 -c \"import os,json; open('{env_out}','w').write(json.dumps(dict(os.environ)))\"\n"
        # a long job: due every (fast) minute, must never run twice at once
        f"* * * * * /bin/sh -c 'echo x >> {starts}; sleep 4' >/dev/null 2>&1\n"
        f"* * * * * /bin/sh -c 'echo broken-config >&2; exit 3'\n"
        f"*/10 * * * * /usr/bin/storectl start\n"
    )
    sched = parse_crontab(text)
    s = Scheduler(sched, skip=supervised_daemon_line(["storectl"]), tick=0.1, clock=_fast_clock())
    assert [e.lineno for e in s.entries] == [2, 3, 4]  # the storectl line is the supervisor's
    os.environ["FIONA_TEST_LEAK"] = "1"
    try:
        s.start()
        env = wait_for(
            lambda: env_out.exists() and env_out.stat().st_size and json.loads(env_out.read_text()),
            timeout=20,
            what="the environment job",
        )
        time.sleep(3)
    finally:
        os.environ.pop("FIONA_TEST_LEAK")
        s.stop()
    # cron's bare environment (plus the crontab's variables), not ours
    assert env["PATH"] == CRON_PATH and env["SHELL"] == "/bin/sh" and env["GREETING"] == "hello"
    assert (
        "HOME" in env
        and "LOGNAME" in env
        and "FIONA_TEST_LEAK" not in env
        and "VIRTUAL_ENV" not in env
    )
    # the 4-second job was due every second (fast clock) but ran once at a time
    assert len(starts.read_text().split()) <= 2
    skipped = [r for r in caplog.records if r.getMessage().startswith("job still running")]
    assert skipped, "the busy line was not reported as skipped"
    failed = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert failed and failed[0].exit_code == 3 and "broken-config" in failed[0].output
    assert any(
        r.getMessage().startswith("crontab line skipped") and r.line == 5 for r in caplog.records
    )


def test_stop_ends_running_jobs_and_their_children(tmp_path: Path) -> None:
    marker = f"sleep 3{os.getpid() % 1000:03d}.25"
    sched = parse_crontab(f"* * * * * /bin/sh -c '{marker} & {marker}'\n")
    s = Scheduler(sched, tick=0.1, grace=2, clock=_fast_clock())
    s.start()
    try:
        wait_for(
            lambda: len(_processes_with(marker)) >= 2, timeout=20, what="the job and its child"
        )
    finally:
        t0 = time.monotonic()
        s.stop()
    assert time.monotonic() - t0 < 10
    assert _processes_with(marker) == [], "a job's process survived the scheduler's stop"


@pytest.mark.slow
def test_a_job_run_is_logged_at_info_only_when_it_did_something(
    tmp_path: Path,
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    """Idle runs of a real job: DEBUG only (their state still recorded); a run with work: one
    INFO line with its counts."""
    config = write_config(tmp_path, logging={"level": "INFO"})
    cfg = load_config(config)
    cfg.paths.create()
    broken = cfg.paths.raw / "1.2.3" / "1.2.3.4"
    broken.mkdir(parents=True)
    (broken / "MR.1.2.3.4.5").symlink_to(tmp_path / "gone")  # work for clearStaleLinks, once
    text = (
        f"* * * * * {BIN}/detectStudyArrival --config {config} >/dev/null 2>&1\n"
        f"* * * * * {BIN}/clearStaleLinks --config {config} --min-age 0 >/dev/null 2>&1\n"
    )
    caplog.set_level(logging.DEBUG, logger="fionagw.scheduler")
    s = Scheduler(
        parse_crontab(text),
        tick=0.1,
        clock=_fast_clock(20.0),  # every line due each 3 s (a run takes about 1 s)
        outcome=lambda e, started: run_outcome(cfg, e.program, started),
    )
    t0 = time.time()
    s.start()
    try:
        wait_for(
            lambda: (
                sum(
                    r.getMessage() == "job finished" and "detectStudyArrival" in r.job
                    for r in caplog.records
                )
                >= 4
            ),
            timeout=90,
            what="four runs of detectStudyArrival",
        )
        wait_for(
            lambda: (
                sum(
                    r.getMessage() == "job finished" and "clearStaleLinks" in r.job
                    for r in caplog.records
                )
                >= 3
            ),
            timeout=90,
            what="three runs of clearStaleLinks",
        )
    finally:
        s.stop()
    # the runs' own lines (a loaded machine may also report a line skipped while still running,
    # or a run that was still going when the scheduler stopped)
    info = [
        r
        for r in caplog.records
        if r.levelno >= logging.INFO
        and r.name == "fionagw.scheduler"
        and not r.getMessage().startswith(("job still running", "job stopped"))
    ]
    assert [(r.getMessage(), r.job.split()[0]) for r in info] == [
        ("job finished", "clearStaleLinks")
    ], [r.getMessage() for r in info]
    assert info[0].summary.startswith("1 broken links"), info[0].summary
    assert not any(
        r.getMessage() == "job started" and r.levelno > logging.DEBUG for r in caplog.records
    )
    # the jobs' own logs stay quiet too, and their state is kept as before
    assert (cfg.paths.logfile("detectStudyArrival")).read_text() == ""
    run = last_run(cfg, "detectStudyArrival")
    assert run is not None and run.ok and run.started >= t0 and run.work == 0
