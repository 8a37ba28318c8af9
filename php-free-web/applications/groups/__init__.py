"""Groups (cohorts): the groups of the user's projects, each group's studies as its report's
rows, send a report now, download the reports, add a study. The logic is in
``fionagw.web.groups_page`` and ``fionagw.notify.groups``."""

from .views import bp

__all__ = ["bp"]
