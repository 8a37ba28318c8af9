"""Audit (admins only): the audit trail's records with search, its chain check, and a CSV
download. The trail is ``fionagw.admin.audit``; it holds no patient value, so the search
may be a query argument."""

from .views import bp

__all__ = ["bp"]
