"""Projects (admins only): the local tracker's projects.yml, one form per project (title,
active, participant-ID regex with a live example, events, destination, de-identification
mode, dates and options), validated like `fiona check-config`. With the REDCap tracker the
projects are shown read-only. The logic is in ``fionagw.admin.projects``."""

from .views import bp

__all__ = ["bp"]
