"""Workflows (FIONA's applications/Workflows): for a project, pick studies and a stream,
launch, watch status and logs, download results, cancel and retry; admins see the whole queue
and the runner's resource settings. The logic is in ``fionagw.web.workflows_page``."""

from .views import bp

__all__ = ["bp"]
