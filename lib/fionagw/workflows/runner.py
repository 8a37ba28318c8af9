"""Run one job: stage its input, run its stream's steps with their limits, hand the output on.

The job's folder (``SitePaths.workflow_job_dir``) holds ``input/<Study>/<Series>/<SOP>`` (hard
links to the archive, copies across filesystems), ``output/`` (emptied when a job is run again)
and ``job.log`` (what every step printed, with a line per step and its outcome). Steps run one
after the other; the first that fails ends the job. An ``exec`` step runs on the host in its own
process group, a ``container`` step through Podman or Docker (runtime.py) under the name
``fionagw-job-<n>``, so a cancel from another process finds it.

While a step runs the runner checks the time limit and, every second, whether the job was
cancelled; either kills the step. A container that ends with SIGKILL (exit 137) that the
runner did not send was killed by the kernel's memory-cgroup OOM killer: Podman with runc on
cgroup v1 does not report ``OOMKilled``, so the reason says "out of memory" from the exit code
when the runtime does not confirm it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from fionagw.config import SiteConfig
from fionagw.config.workflows import Limits, Step, Stream
from fionagw.ops.perms import make_dirs
from fionagw.workflows.jobs import Job, JobList
from fionagw.workflows.runtime import (
    INPUT_MOUNT,
    OUTPUT_MOUNT,
    ContainerRuntime,
    RuntimeMissing,
    find_runtime,
)

LOGGER = logging.getLogger(__name__)
POLL_S = 0.2
CANCEL_CHECK_S = 1.0
SIGKILL_EXIT = 128 + signal.SIGKILL


@dataclass
class StepOutcome:
    ok: bool
    exit_code: int | None
    reason: str = ""
    cancelled: bool = False


def job_dir(cfg: SiteConfig, job: Job) -> Path:
    return cfg.paths.workflow_job_dir(job.project, job.ror_folder)


def stage_input(cfg: SiteConfig, job: Job, target: Path) -> int:
    """Link the job's images (its study or series) under ``target``; how many."""
    if target.exists():
        shutil.rmtree(target)
    count = 0
    for study in job.study_uids:
        study_dir = cfg.paths.raw_study_dir(study)
        series_dirs = (
            [cfg.paths.raw_series_dir(study, job.series_uid)]
            if job.series_uid
            else sorted(p for p in study_dir.glob("*") if p.is_dir())
        )
        for series in series_dirs:
            out = target / study / series.name
            make_dirs(out)
            for link in sorted(series.iterdir()):
                if link.name.startswith("."):
                    continue
                source = Path(os.path.realpath(link))
                try:
                    os.link(source, out / link.name)
                except OSError:
                    shutil.copyfile(source, out / link.name)
                count += 1
    return count


def expand(args: tuple[str, ...], values: dict[str, str]) -> list[str]:
    """FIONA's placeholders replaced in each argument."""
    out = []
    for arg in args:
        for key, value in values.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


class JobRunner:
    """Runs jobs of one site; ``runtime`` is found when the first container step needs it."""

    def __init__(self, cfg: SiteConfig, jobs: JobList) -> None:
        self.cfg, self.jobs = cfg, jobs
        self._runtime: ContainerRuntime | None = None

    def runtime(self) -> ContainerRuntime:
        if self._runtime is None:
            self._runtime = find_runtime(self.cfg.workflows.runtime)
        return self._runtime

    def run_steps(self, job: Job, stream: Stream, folder: Path) -> StepOutcome:
        """Stage the input and run every step; the first failure ends the job."""
        input_dir, output_dir = folder / "input", folder / "output"
        make_dirs(folder)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        make_dirs(output_dir)
        images = stage_input(self.cfg, job, input_dir)
        if not images:
            return StepOutcome(False, None, "no images of the job's study in raw/ (removed?)")
        steps = stream.series_steps if job.series_uid else stream.study_steps
        with open(folder / "job.log", "a", encoding="utf-8") as log:
            log.write(f"== job {job.job_number} attempt {job.attempts}: {images} input images\n")
            for i, step in enumerate(steps, 1):
                log.write(f"== step {i} ({step.type}{' ' + step.image if step.image else ''})\n")
                log.flush()
                outcome = self._step(job, stream, step, input_dir, output_dir, log)
                log.write(f"== step {i}: {outcome.reason or 'exit 0'}\n")
                if not outcome.ok:
                    if not outcome.cancelled:
                        outcome.reason = f"step {i}: {outcome.reason}"
                    return outcome
        return StepOutcome(True, 0)

    def _step(
        self, job: Job, stream: Stream, step: Step, input_dir: Path, output_dir: Path, log
    ) -> StepOutcome:  # type: ignore[no-untyped-def]
        container = step.type == "container"
        values = {
            "@StudyInstanceUID@": job.study_uids[0] if job.study_uids else "",
            "@SeriesInstanceUID@": job.series_uid,
            "@PATH@": INPUT_MOUNT if container else str(input_dir),
            "@WorkflowsFolder@": OUTPUT_MOUNT if container else str(output_dir),
            "@DESCRIPTION@": stream.description,
        }
        cmd = expand(step.cmd, values)
        if container:
            try:
                runtime = self.runtime()
            except RuntimeMissing as exc:
                return StepOutcome(False, None, str(exc))
            if not runtime.image_exists(step.image):
                return StepOutcome(
                    False,
                    None,
                    f"image {step.image} is not in {runtime.name}'s local images (never pulled:"
                    f" build or load it)",
                )
            runtime.remove(job.container_name)  # a leftover of an interrupted attempt
            env = {k: expand((v,), values)[0] for k, v in step.environment.items()}
            argv = runtime.run_command(
                job.container_name,
                step.image,
                cmd,
                env=env,
                input_dir=input_dir,
                output_dir=output_dir,
                limits=stream.limits,
            )
        else:
            argv = cmd
        try:
            proc = subprocess.Popen(
                argv,
                cwd=output_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill reaches its children
            )
        except OSError as exc:
            return StepOutcome(False, None, f"cannot start {argv[0]}: {exc.strerror}")
        try:
            return self._wait(job, proc, stream.limits, container)
        finally:
            if container:
                self.runtime().remove(job.container_name)

    def _wait(
        self, job: Job, proc: subprocess.Popen, limits: Limits, container: bool
    ) -> StepOutcome:  # type: ignore[type-arg]
        deadline = time.monotonic() + limits.time_limit_s
        next_check = time.monotonic() + CANCEL_CHECK_S
        killed = ""
        while proc.poll() is None:
            time.sleep(POLL_S)
            now = time.monotonic()
            if not killed and now > deadline:
                killed = "time"
            elif not killed and now >= next_check:
                next_check = now + CANCEL_CHECK_S
                if self.jobs.get(job.job_number).cancel_requested:
                    killed = "cancel"
            if killed and proc.poll() is None:
                self._kill(job, proc, container)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        if not killed and self.jobs.get(job.job_number).cancel_requested:
            killed = "cancel"  # the canceller killed the container before our next look
        code, state = proc.returncode, None
        if container:
            state = self.runtime().exit_state(job.container_name)
            if state is not None:
                code = state.exit_code
        if killed == "cancel":
            return StepOutcome(False, code, "cancelled", cancelled=True)
        if killed == "time":
            return StepOutcome(
                False, code, f"time limit of {limits.time_limit_s} s exceeded; stopped"
            )
        if code == 0:
            return StepOutcome(True, 0)
        if container and code == SIGKILL_EXIT:
            confirmed = state is not None and state.oom_killed
            how = "" if confirmed else " (exit 137 with no kill by the gateway)"
            return StepOutcome(
                False, code, f"killed: out of memory, over its limit of {limits.memory_mb} MB{how}"
            )
        if code is not None and code < 0:
            return StepOutcome(False, code, f"killed by signal {-code}")
        return StepOutcome(False, code, f"exited with code {code}")

    def _kill(self, job: Job, proc: subprocess.Popen, container: bool) -> None:  # type: ignore[type-arg]
        if container:
            self.runtime().kill(job.container_name)
        try:
            os.killpg(proc.pid, signal.SIGTERM if container else signal.SIGKILL)
        except ProcessLookupError:
            pass
