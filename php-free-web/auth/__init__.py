"""Login and accounts: the login page, logout and the account page (:mod:`.views`, blueprint
``auth``), the session check before every request (:mod:`.session`) and the role checks views
use (:mod:`.roles`)."""

from .views import bp

__all__ = ["bp"]
