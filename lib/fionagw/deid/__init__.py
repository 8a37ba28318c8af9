"""De-identification: PS3.15 Annex E profile (profile.py), engine (engine.py), release check
(release.py). See DESIGN.md section 4."""

from fionagw.deid.engine import (
    DIFFUSION_PRIVATE,
    Deidentifier,
    DeidSettings,
    fiona_uid,
    keyed_date_offset,
    keyed_uid,
    shift_da,
    shift_dt,
)
from fionagw.deid.profile import OPTION_CODES, TABLE, Profile
from fionagw.deid.release import Hit, Identifiers, check_release, collect_identifiers

__all__ = ["DIFFUSION_PRIVATE", "OPTION_CODES", "TABLE", "DeidSettings", "Deidentifier", "Hit",
           "Identifiers", "Profile", "check_release", "collect_identifiers", "fiona_uid",
           "keyed_date_offset", "keyed_uid", "shift_da", "shift_dt"]
