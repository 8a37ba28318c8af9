"""Status (FIONA's applications/Status): services up/down, cron jobs and their freshness, queue
depths, disk, and the week's plots (images received per hour, transfers per day). Every
logged-in user may look."""

from .views import bp

__all__ = ["bp"]
