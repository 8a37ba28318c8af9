"""The engine a project's settings need: the PS3.15 engine with the rule set they name.

engine.py knows no rule set (it refuses settings that need one without it); this is where
the choice is made, so engine and rule sets depend on each other only through ruleset.py.
"""

from __future__ import annotations

from fionagw.deid.engine import Deidentifier, DeidSettings
from fionagw.deid.fiona_rules import FionaRules


def deidentifier_for(settings: DeidSettings) -> Deidentifier:
    """A Deidentifier for ``settings``: with FionaRules for the FIONA table or tag changes."""
    return Deidentifier(settings, FionaRules if settings.needs_rule_set else None)
