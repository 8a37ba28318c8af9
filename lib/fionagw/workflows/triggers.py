"""Which streams a study or series starts, and queueing their jobs.

At arrival (detectStudyArrival, when a study is complete) every stream is tried: its trigger's
``AETitleCalled`` and ``AETitleCaller`` against the association's AE titles (the called AE is
how research-PACS users pick the service, FIONA's "send to teleradiology destination"), and
``ClassifyType`` against the series' types (any series for a ``trigger-study`` stream, each
series for a ``trigger-series`` one). The trigger's ``project`` names the project the stream
serves: its jobs belong to it (its destination, its records). A study stream
queues one job for the study, a series stream one per matching series. An arrival seen again
(a late series: study-updated) queues nothing twice: a job for the same stream, study and
series that is not failed or cancelled already covers it.

By hand (`fiona workflow run`, the Workflows page) any stream can be run on any studies of its
project; the trigger's AE titles do not apply.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fionagw.config import SiteConfig
from fionagw.config.workflows import Stream
from fionagw.workflows.jobs import Job, JobError, job_folder, now_text
from fionagw.workflows.worker import job_list

LOGGER = logging.getLogger(__name__)


def _match(stream: Stream, key: str, value: str) -> bool:
    pattern = stream.trigger.patterns.get(key)
    return pattern is None or pattern.search(value) is not None


def series_matches(stream: Stream, classify_types: Iterable[str]) -> bool:
    pattern = stream.trigger.patterns.get("ClassifyType")
    return pattern is None or any(pattern.search(t) for t in classify_types)


def arrival_streams(cfg: SiteConfig, called: str, calling: str) -> list[Stream]:
    """The streams whose association trigger (AE titles) an arrival matches; a stream
    without ``AETitleCalled`` is started by hand only."""
    return [
        s
        for s in cfg.workflows.streams.values()
        if "AETitleCalled" in s.trigger.patterns
        and _match(s, "AETitleCalled", called)
        and _match(s, "AETitleCaller", calling)
    ]


def _queue(
    cfg: SiteConfig,
    stream: Stream,
    studies: Sequence[str],
    *,
    series: str = "",
    trigger: str,
    user: str = "",
    called: str = "",
    calling: str = "",
    project: str = "",
) -> Job | None:
    def make(number: int) -> Job:
        return Job(
            job_number=number,
            project=project or stream.project,
            stream=stream.name,
            study_uids=list(studies),
            series_uid=series,
            image=stream.image,
            user=user,
            date=now_text(),
            ror_folder=job_folder(number, stream.image),
            destination=stream.destination,
            trigger=trigger,
            called=called,
            calling=calling,
        )

    def same(j: Job) -> bool:
        return j.stream == stream.name and j.study_uids == list(studies) and j.series_uid == series

    job = job_list(cfg).add(make, unique=same if trigger != "manual" else None)
    if job is not None:
        LOGGER.info(
            "workflow job queued",
            extra={
                "job": job.job_number,
                "stream": stream.name,
                "trigger": trigger,
                "study_uid": studies[0] if studies else "",
                "series_uid": series,
            },
        )
    return job


def on_arrival(
    cfg: SiteConfig, study_uid: str, called: str, calling: str, series: Sequence[Mapping[str, Any]]
) -> list[Job]:
    """Queue the jobs an arrived study starts (``series``: the incoming list's entries, with
    ``uid`` and ``classify_type``); the jobs queued."""
    queued = []
    for stream in arrival_streams(cfg, called, calling):
        if stream.study_steps:
            types = [t for s in series for t in (s.get("classify_type") or [])]
            if series_matches(stream, types):
                job = _queue(
                    cfg, stream, [study_uid], trigger="study", called=called, calling=calling
                )
                queued += [job] if job else []
            continue
        for s in series:
            if series_matches(stream, s.get("classify_type") or []):
                job = _queue(
                    cfg,
                    stream,
                    [study_uid],
                    series=str(s.get("uid", "")),
                    trigger="series",
                    called=called,
                    calling=calling,
                )
                queued += [job] if job else []
    return queued


def launch(
    cfg: SiteConfig, stream_name: str, studies: Sequence[str], *, user: str, project: str = ""
) -> list[Job]:
    """Queue a stream by hand on ``studies`` (one job for a study stream, one per series of
    each study for a series stream); JobError for an unknown stream or a study not here."""
    stream = cfg.workflows.streams.get(stream_name)
    if stream is None:
        known = ", ".join(sorted(cfg.workflows.streams)) or "none configured"
        raise JobError(f"no stream {stream_name!r} (streams: {known})")
    if not studies:
        raise JobError("no study given")
    for study in studies:
        if not cfg.paths.raw_study_dir(study).is_dir():
            raise JobError(f"study {study} is not in raw/ of this site")
    if stream.project and project and project != stream.project:
        raise JobError(f"stream {stream.name!r} serves project {stream.project!r}, not {project!r}")
    if stream.study_steps:
        job = _queue(cfg, stream, list(studies), trigger="manual", user=user, project=project)
        return [job] if job else []
    jobs = []
    for study in studies:
        for series in sorted(
            p.name for p in cfg.paths.raw_study_dir(study).iterdir() if p.is_dir()
        ):
            job = _queue(
                cfg, stream, [study], series=series, trigger="manual", user=user, project=project
            )
            jobs += [job] if job else []
    return jobs


def queue_for_arrival(
    cfg: SiteConfig, study_uid: str, called: str, calling: str, series: Sequence[Mapping[str, Any]]
) -> None:
    """:func:`on_arrival` for detectStudyArrival: a failure (disk, a broken job list) is
    logged and does not stop the arrival; `fiona workflow run` can start the stream by hand."""
    try:
        on_arrival(cfg, study_uid, called, calling, series)
    except (OSError, JobError) as exc:
        LOGGER.error(
            "workflow jobs of an arrival not queued",
            extra={"study_uid": study_uid, "error": str(exc)},
        )
