"""What people did to transfer requests, in the site's one audit trail (fionagw.admin.audit).

Kept for its callers (Assign, Studies, the QC bypass): ``audit(cfg, user, action, message,
request=..., study_uid=..., project=...)`` appends one chained record whose ``object`` is the
request file's name (else the study, else the project).
"""

from __future__ import annotations

from typing import Any

from fionagw.admin.audit import COMPONENT, record
from fionagw.config import SiteConfig

__all__ = ["COMPONENT", "audit"]


def audit(cfg: SiteConfig, user: str, action: str, message: str, **fields: Any) -> None:
    """Append one audit record. ``fields`` must not hold a value from a DICOM file."""
    obj = fields.get("request") or fields.get("study_uid") or fields.get("project") or ""
    record(cfg, action, str(obj), message, who=user, **fields)
