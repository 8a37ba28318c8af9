"""The container runtime: Podman or Docker, through their command-line programs.

Both take the same ``run`` options, so one adapter serves both. ``find_runtime`` picks the one
configured (``workflows.runtime``) or, with ``auto``, the first of podman and docker whose
``info`` answers (a docker CLI without its daemon does not count), and raises RuntimeMissing
with what it tried when neither works. Podman's own settings come from its usual places
(``CONTAINERS_CONF`` for containers.conf: runtime, ulimits).

Every container runs with the job's limits: ``--cpus``, ``--memory`` with no swap beyond it,
``--pids-limit``, ``no-new-privileges``, ``--network none`` unless the stream allows the network, the input folder
mounted read-only at /input and the output folder at /output, ``--rm`` left out so the exit
state can be read; the adapter removes the container itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fionagw.config.workflows import Limits, WorkflowsSettings

INPUT_MOUNT = "/input"
OUTPUT_MOUNT = "/output"
PIDS_LIMIT = 1024
INFO_TIMEOUT_S = 20.0


class RuntimeMissing(Exception):
    """Neither Podman nor Docker can run containers here; str() says what was tried."""


@dataclass(frozen=True)
class ExitState:
    exit_code: int
    oom_killed: bool
    error: str = ""


@dataclass(frozen=True)
class ContainerRuntime:
    program: str  # the path of podman or docker
    name: str  # "podman" or "docker"

    def run_command(
        self,
        container: str,
        image: str,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str],
        input_dir: Path,
        output_dir: Path,
        limits: Limits,
    ) -> list[str]:
        """The ``run`` command line of one step (started by the caller, which waits for it)."""
        args = [
            self.program,
            "run",
            "--name",
            container,
            "--pull",
            "never",  # images are built or loaded locally; a job never reaches a registry
            "--cpus",
            f"{limits.cpus:g}",
            "--memory",
            f"{limits.memory_mb}m",
            "--memory-swap",
            f"{limits.memory_mb}m",  # the same: no swap on top of the limit
            "--pids-limit",
            str(PIDS_LIMIT),
            "--security-opt",
            "no-new-privileges",  # no setuid escalation inside the container
            "--volume",
            f"{input_dir}:{INPUT_MOUNT}:ro",
            "--volume",
            f"{output_dir}:{OUTPUT_MOUNT}:rw",
            "--workdir",
            OUTPUT_MOUNT,
        ]
        if not limits.network:
            args += ["--network", "none"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        return [*args, image, *cmd]

    def _quiet(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.program, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def exit_state(self, container: str) -> ExitState | None:
        """How the container ended (None when the runtime does not know it)."""
        r = self._quiet("inspect", "--format", "{{json .State}}", container)
        if r.returncode != 0:
            return None
        try:
            state = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None
        return ExitState(
            int(state.get("ExitCode", -1)),
            bool(state.get("OOMKilled")),
            str(state.get("Error") or ""),
        )

    def kill(self, container: str) -> bool:
        """Stop the container now (SIGKILL); False when it was not running."""
        try:
            return self._quiet("kill", container, timeout=30).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def remove(self, container: str) -> None:
        try:
            self._quiet("rm", "--force", container, timeout=60)
        except subprocess.TimeoutExpired:
            pass

    def image_exists(self, image: str) -> bool:
        return self._quiet("image", "inspect", image).returncode == 0

    def running(self) -> list[str]:
        """The names of the gateway's running job containers."""
        r = self._quiet("ps", "--filter", "name=fionagw-job-", "--format", "{{.Names}}")
        return [n for n in r.stdout.split() if n.startswith("fionagw-job-")]


def _works(program: str) -> str:
    """ "" when ``program info`` answers, else why not (one line)."""
    try:
        r = subprocess.run(
            [program, "info"], capture_output=True, text=True, timeout=INFO_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return f"`{program} info` did not answer within {INFO_TIMEOUT_S:g} s"
    except OSError as exc:
        return f"cannot run {program}: {exc.strerror}"
    if r.returncode == 0:
        return ""
    lines = (r.stderr or r.stdout).strip().splitlines()
    return f"`{program} info` failed: {lines[-1][:160] if lines else f'exit {r.returncode}'}"


def runtime_problem(settings: WorkflowsSettings) -> str:
    """Why the container steps of the configured streams could not run here ("" if they can,
    or if no stream has one): for check-config."""
    steps = [st for s in settings.streams.values() for st in (*s.study_steps, *s.series_steps)]
    if not any(st.type == "container" for st in steps):
        return ""
    try:
        find_runtime(settings.runtime)
    except RuntimeMissing as exc:
        return f"Streams: container steps cannot run: {exc}"
    return ""


def find_runtime(choice: str = "auto") -> ContainerRuntime:
    """The runtime to use (``choice``: auto, podman or docker), or RuntimeMissing."""
    names = ("podman", "docker") if choice == "auto" else (choice,)
    problems = []
    for name in names:
        program = shutil.which(name)
        if program is None:
            problems.append(f"{name}: not installed")
            continue
        problem = _works(program)
        if not problem:
            return ContainerRuntime(program, name)
        problems.append(f"{name}: {problem}")
    raise RuntimeMissing(
        "no container runtime works (install Podman or Docker): " + "; ".join(problems)
    )
