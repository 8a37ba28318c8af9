"""Settings (FIONA's applications/Settings): the effective configuration with secrets masked,
and a test button per destination (runs its check(): C-ECHO, folder write, SFTP login, HTTPS
reachability). Admins only. The logic is in ``fionagw.web.settings_page``."""

from .views import bp

__all__ = ["bp"]
