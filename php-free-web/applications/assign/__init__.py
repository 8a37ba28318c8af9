"""Assign (FIONA's applications/Assign): the incoming studies of the last days; assign one to a
project, participant and event, or upload a coupling list. The logic is in
``fionagw.web.assign_queries``; studies are addressed by an opaque key, never by UID."""

from .views import bp

__all__ = ["bp"]
