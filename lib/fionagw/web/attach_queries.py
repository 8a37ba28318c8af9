"""What the Attach page shows, without HTTP: the uploads a user may see. An upload is seen by
its uploader, by admins, and by users with the assign or review role on its project."""

from __future__ import annotations

from typing import Any

from fionagw.config import SiteConfig
from fionagw.upload.records import UploadRecord, list_uploads, load_record

ROLES_THAT_SEE = ("assign", "review")


def may_view(user: Any, record: UploadRecord) -> bool:
    """``user`` is a ``fionagw.web.users.User`` (is_admin, name, has_role)."""
    if user.is_admin or record.user == user.name:
        return True
    return bool(record.project) and any(user.has_role(record.project, r) for r in ROLES_THAT_SEE)


def visible_uploads(cfg: SiteConfig, user: Any) -> list[UploadRecord]:
    """The newest uploads the user may see."""
    return [r for r in list_uploads(cfg) if may_view(user, r)]


def user_upload(cfg: SiteConfig, user: Any, upload_id: str) -> UploadRecord | None:
    """The upload ``upload_id`` if it exists and the user may see it."""
    try:
        record = load_record(cfg, upload_id)
    except ValueError:  # not an upload id
        return None
    return record if record is not None and may_view(user, record) else None
