"""Destinations (admins only): config.json's destinations by type, added, edited and tested
(C-ECHO, folder write, SFTP login and write, HTTPS reachability). The logic is in
``fionagw.admin.destinations`` and ``fionagw.web.settings_page``."""

from .views import bp

__all__ = ["bp"]
