"""The web applications (FIONA's applications/<App>/), one sub-package each with its views,
templates and static files, in the order of the navigation's tabs."""

from ..navigation import Application
from . import (
    assign,
    attach,
    audit,
    destinations,
    exports,
    groups,
    logs,
    projects,
    review,
    settings,
    status,
    studies,
    users,
    workflows,
)

APPLICATIONS: tuple[Application, ...] = (
    Application(assign.bp, "Assign"),
    Application(studies.bp, "Studies"),
    Application(review.bp, "Review", role="review"),
    Application(attach.bp, "Attach", role="assign"),
    Application(workflows.bp, "Workflows", role="assign"),
    Application(exports.bp, "Exports", role="export"),
    Application(groups.bp, "Groups", role="assign"),
    Application(logs.bp, "Logs", role="admin"),
    Application(status.bp, "Status"),
    Application(settings.bp, "Settings", role="admin"),
    Application(users.bp, "Users", role="admin"),
    Application(projects.bp, "Projects", role="admin"),
    Application(destinations.bp, "Destinations", role="admin"),
    Application(audit.bp, "Audit", role="admin"),
)
