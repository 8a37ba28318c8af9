"""config.json ``Streams`` (FIONA's Workflows key) and ``workflows`` (the runner's limits), typed.

    "workflows": {"runtime": "auto", "max_concurrent": 2,
                  "limits": {"cpus": 1, "memory_mb": 2048, "time_limit_s": 3600,
                             "network": false}},
    "Streams": [{"name": "mriqc", "description": "MRI quality metrics",
                 "trigger": {"AETitleCalled": "^MYALGORITHM$", "AETitleCaller": "^PACS",
                             "project": "ALPHA", "ClassifyType": "T1"},
                 "destination": "research-pacs", "features_only": "",
                 "limits": {"memory_mb": 512},
                 "trigger-study": [{"type": "container", "image": "localhost/mriqc:1",
                                    "cmd": ["/bin/qc", "@PATH@", "@WorkflowsFolder@"],
                                    "environment": {"MODE": "fast"}}],
                 "trigger-series": []}]

FIONA's Streams keys are kept (name, description, log, trigger.AETitleCalled, trigger-study and
trigger-series steps of type ``exec`` with ``cmd``); ours are the other trigger keys, the
``container`` step, ``destination``, ``features_only`` and ``limits``. Every trigger key is a
regular expression searched in its value (FIONA anchors its own with ^...$); all that are
given must match. ``project`` names the project the stream serves: its results go to that
project's destination and records, and arrivals are matched to it by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fionagw.config.reader import SectionReader

if TYPE_CHECKING:
    from fionagw.config.destinations import DestinationSettings

RUNTIMES = ("auto", "podman", "docker")
STEP_TYPES = ("exec", "container")
TRIGGER_KEYS = ("AETitleCalled", "AETitleCaller", "project", "ClassifyType")
STREAM_KEYS = (
    "name",
    "description",
    "log",
    "trigger",
    "trigger-study",
    "trigger-series",
    "destination",
    "features_only",
    "limits",
)
LIMIT_KEYS = ("cpus", "memory_mb", "time_limit_s", "network")
PLACEHOLDERS = (
    "@StudyInstanceUID@",
    "@SeriesInstanceUID@",
    "@PATH@",
    "@WorkflowsFolder@",
    "@DESCRIPTION@",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# an image reference as podman/docker take it (registry/name:tag or @digest), nothing else
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")


@dataclass(frozen=True)
class Limits:
    """What one job may use. A container gets them from the runtime (cgroups); an exec step
    gets the time limit only (it runs as the gateway's user, on the host)."""

    cpus: float = 1.0
    memory_mb: int = 2048
    time_limit_s: int = 3600
    network: bool = False  # containers run with --network none unless this is true


@dataclass(frozen=True)
class Step:
    type: str  # "exec" or "container"
    cmd: tuple[str, ...]
    image: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Trigger:
    """Regular expressions by FIONA key; an absent key matches anything."""

    patterns: Mapping[str, re.Pattern[str]] = field(default_factory=dict)

    def text(self, key: str) -> str:
        pattern = self.patterns.get(key)
        return pattern.pattern if pattern else ""


@dataclass(frozen=True)
class Stream:
    name: str
    description: str = ""
    trigger: Trigger = field(default_factory=Trigger)
    study_steps: tuple[Step, ...] = ()
    series_steps: tuple[Step, ...] = ()
    destination: str = ""  # "" = the project's destination
    features_only: str = ""  # an https destination: only features.json goes there
    limits: Limits = field(default_factory=Limits)
    log: str = ""  # FIONA's key (a log file name); kept, unused: job logs are per job

    @property
    def project(self) -> str:
        """The project the stream serves (its trigger's ``project``, as a plain name)."""
        text = self.trigger.text("project")
        return text[1:-1] if text.startswith("^") and text.endswith("$") else text

    @property
    def image(self) -> str:
        """The first container image (FIONA's job list has one ``image`` per job)."""
        steps = self.study_steps or self.series_steps
        return next((s.image for s in steps if s.type == "container"), "")


@dataclass(frozen=True)
class WorkflowsSettings:
    runtime: str = "auto"  # podman or docker, whichever works (podman first)
    max_concurrent: int = 2
    limits: Limits = field(default_factory=Limits)
    streams: Mapping[str, Stream] = field(default_factory=dict)


def _limits(r: SectionReader, base: Limits) -> Limits:
    r.reject_unknown(LIMIT_KEYS, what="limits")
    limits = Limits(
        cpus=float(r.get("cpus", (int, float), base.cpus)),
        memory_mb=r.get("memory_mb", int, base.memory_mb),
        time_limit_s=r.get("time_limit_s", int, base.time_limit_s),
        network=r.get("network", bool, base.network),
    )
    if not 0 < limits.cpus <= 256:
        raise r.error("cpus", f"must be more than 0 and at most 256, got {limits.cpus:g}")
    if limits.memory_mb < 6:  # podman and docker refuse less than 6 MB
        raise r.error("memory_mb", f"must be at least 6, got {limits.memory_mb}")
    if limits.time_limit_s < 1:
        raise r.error("time_limit_s", f"must be at least 1, got {limits.time_limit_s}")
    return limits


def _regex(r: SectionReader, key: str) -> re.Pattern[str]:
    text = r.get(key, str)
    try:
        return re.compile(text)
    except re.error as exc:
        raise r.error(key, f"not a regular expression: {exc}") from None


def _step(r: SectionReader) -> Step:
    kind = r.get("type", str)
    if kind not in STEP_TYPES:
        raise r.error("type", f"must be one of {', '.join(STEP_TYPES)}, got {kind!r}")
    keys = ("type", "cmd") if kind == "exec" else ("type", "cmd", "image", "environment")
    r.reject_unknown(keys, what=f"an {kind} step")
    cmd = r.str_list("cmd")
    image = ""
    env: dict[str, str] = {}
    if kind == "exec" and not cmd:
        raise r.error("cmd", "an exec step needs a command (a list of strings)")
    if kind == "container":
        image = r.get("image", str)
        if not _IMAGE.match(image):
            raise r.error("image", f"not an image reference: {image!r}")
        env = r.get("environment", dict, {})
        for name, value in env.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or not isinstance(value, str):
                raise r.error(f"environment.{name}", "expected NAME: string value")
    return Step(kind, tuple(cmd), image, env)


def _steps(r: SectionReader, key: str) -> tuple[Step, ...]:
    items = r.get(key, list, [])
    steps = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise r.error(f"{key}[{i}]", 'expected an object with a "type"')
        steps.append(
            _step(SectionReader(r.file, item, f"{r.prefix}{key}[{i}].", warnings=r.warnings))
        )
    return tuple(steps)


def _stream(r: SectionReader, base: Limits, destinations: Mapping[str, Any]) -> Stream:
    r.reject_unknown(STREAM_KEYS, what="a stream")
    name = r.get("name", str)
    if not _NAME.match(name):
        raise r.error("name", "a stream name has 1-64 letters, digits, '.', '_' or '-'")
    trig = r.section("trigger")
    trig.reject_unknown(TRIGGER_KEYS, what="a trigger")
    trigger = Trigger({k: _regex(trig, k) for k in TRIGGER_KEYS if trig.data.get(k) is not None})
    stream = Stream(
        name=name,
        description=r.get("description", str, ""),
        trigger=trigger,
        study_steps=_steps(r, "trigger-study"),
        series_steps=_steps(r, "trigger-series"),
        destination=r.get("destination", str, ""),
        features_only=r.get("features_only", str, ""),
        limits=_limits(r.section("limits"), base),
        log=r.get("log", str, ""),
    )
    if not stream.study_steps and not stream.series_steps:
        raise r.error("trigger-study", "a stream needs trigger-study or trigger-series steps")
    if stream.study_steps and stream.series_steps:
        raise r.error("trigger-series", "give trigger-study or trigger-series, not both")
    for key in ("destination", "features_only"):
        value = getattr(stream, key)
        if value and value not in destinations:
            known = ", ".join(sorted(destinations)) or "none"
            raise r.error(key, f"unknown destination {value!r} (config.json destinations: {known})")
    if stream.features_only and destinations[stream.features_only].type != "https":
        raise r.error("features_only", f"{stream.features_only!r} is not an https destination")
    if stream.features_only and stream.destination:
        raise r.error("destination", "a features_only stream sends no DICOM: drop destination")
    return stream


def parse_workflows(
    top: SectionReader, destinations: Mapping[str, DestinationSettings]
) -> WorkflowsSettings:
    """``workflows`` and ``Streams`` of the whole config (``top``), checked against the
    site's destinations."""
    r = top.section("workflows")
    r.reject_unknown(("runtime", "max_concurrent", "limits"), what="workflows")
    runtime = r.get("runtime", str, "auto")
    if runtime not in RUNTIMES:
        raise r.error("runtime", f"must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    max_concurrent = r.get("max_concurrent", int, 2)
    if not 1 <= max_concurrent <= 64:
        raise r.error("max_concurrent", f"must be 1-64, got {max_concurrent}")
    limits = _limits(r.section("limits"), Limits())
    items = top.get("Streams", list, [])
    streams: dict[str, Stream] = {}
    for i, item in enumerate(items):
        where = f"Streams[{i}]"
        if not isinstance(item, dict):
            raise top.error(where, "expected an object with a name and steps")
        reader = SectionReader(top.file, item, f"{where}.", warnings=top.warnings)
        stream = _stream(reader, limits, destinations)
        if stream.name in streams:
            raise reader.error("name", f"a second stream named {stream.name!r}")
        streams[stream.name] = stream
    return WorkflowsSettings(runtime, max_concurrent, limits, streams)
