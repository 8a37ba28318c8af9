"""The stored QC result of a study: ``DATADIR/qc/<Study>.json`` (written atomically, 0640)."""

from __future__ import annotations

import json

from fionagw.ops.atomic import write_json_atomic
from fionagw.ops.perms import make_dirs
from fionagw.paths import SitePaths
from fionagw.qc.results import StudyQc


def load(paths: SitePaths, study_uid: str) -> StudyQc | None:
    """The stored result, or None (never checked, or unreadable: it is made again)."""
    try:
        data = json.loads(paths.qc_result(study_uid).read_text(encoding="utf-8"))
        return StudyQc.from_json(data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def save(paths: SitePaths, result: StudyQc) -> None:
    make_dirs(paths.qc)
    write_json_atomic(paths.qc_result(result.study_uid), result.as_json(), durable=True)
