"""De-identification: PS3.15 Annex E profile (profile.py, from table_ps315.py), engine
(engine.py) with its rule-set hook (ruleset.py), FIONA mode and tag changes (fiona_rules.py,
tagchange.py, table_fiona.py), the engine for given settings (factory.py), release check
(release.py), mapping.json (mapping.py), per-project settings (project_settings.py, imported on
its own: it reads the site config). docs/architecture.md describes the
whole path."""

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
from fionagw.deid.factory import deidentifier_for
from fionagw.deid.fiona_rules import FionaRules, decimal_digest, fallback_study_date, study_id
from fionagw.deid.mapping import study_mapping, write_mapping
from fionagw.deid.profile import OPTION_CODES, TABLE, Profile
from fionagw.deid.release import Hit, Identifiers, check_release, collect_identifiers
from fionagw.deid.ruleset import ObjectContext, RuleSet
from fionagw.deid.tagchange import NO_MATCH, TagChange, parse_tag_change, regex_value

__all__ = [
    "DIFFUSION_PRIVATE",
    "NO_MATCH",
    "OPTION_CODES",
    "TABLE",
    "DeidSettings",
    "Deidentifier",
    "FionaRules",
    "Hit",
    "Identifiers",
    "ObjectContext",
    "Profile",
    "RuleSet",
    "TagChange",
    "check_release",
    "collect_identifiers",
    "decimal_digest",
    "deidentifier_for",
    "fallback_study_date",
    "fiona_uid",
    "keyed_date_offset",
    "keyed_uid",
    "parse_tag_change",
    "regex_value",
    "shift_da",
    "shift_dt",
    "study_id",
    "study_mapping",
    "write_mapping",
]
