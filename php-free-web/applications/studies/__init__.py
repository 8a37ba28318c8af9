"""Studies: every study with whether it is stable, its QC state, assignment, transfer state and
verification; a study's QC result and series, its report (HTML, PDF, JSON, TXT), cancel or
retry a transfer, bypass failed QC checks. The logic is in ``fionagw.web.studies_page``."""

from .views import bp

__all__ = ["bp"]
