"""What one transfer sent: ``DATADIR/transfers_sent/<request>.json``.

    {"destination": "research-pacs", "study_uid": "<de-identified StudyInstanceUID>",
     "series": {"<de-identified SeriesInstanceUID>": ["<de-identified SOPInstanceUID>", ...]}}

Written by anonymizeAndSend after every successful send (the whole selection of the study, also
when only missing instances were re-sent), read by the reconciliation. UIDs only: the
de-identified UIDs carry no patient data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from fionagw.ops.atomic import write_json_atomic
from fionagw.ops.perms import make_dirs
from fionagw.paths import SitePaths


class ManifestError(Exception):
    """A manifest that cannot be read; str() names the file."""


@dataclass
class SentManifest:
    destination: str
    study_uid: str
    series: dict[str, list[str]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(s) for s in self.series.values())


def write_manifest(paths: SitePaths, request_name: str, manifest: SentManifest) -> Path:
    path = paths.sent_manifest(request_name)
    make_dirs(path.parent)
    write_json_atomic(
        path,
        {
            "destination": manifest.destination,
            "study_uid": manifest.study_uid,
            "series": manifest.series,
        },
    )
    return path


def read_manifest(paths: SitePaths, request_name: str) -> SentManifest | None:
    """The manifest of a request, None if it has none (sent before manifests existed, or to a
    destination that keeps none), ManifestError if it is unreadable."""
    path = paths.sent_manifest(request_name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: unreadable sent manifest: {exc}") from None
    try:
        series = {str(k): [str(u) for u in v] for k, v in data["series"].items()}
        return SentManifest(str(data["destination"]), str(data["study_uid"]), series)
    except (KeyError, TypeError, AttributeError):
        raise ManifestError(
            f"{path}: not a sent manifest (destination, study_uid, series)"
        ) from None
