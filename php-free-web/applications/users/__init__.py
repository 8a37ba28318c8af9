"""Users (admins only): the page form of `fiona user add|passwd|grant|revoke|remove|list`.
An account made or reset here must choose its own password at its first login. Every change
goes through ``fionagw.admin.accounts`` (the user store, and one audit record)."""

from .views import bp

__all__ = ["bp"]
