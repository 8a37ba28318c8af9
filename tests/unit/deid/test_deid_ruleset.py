"""The rule-set hook of the engine (ruleset.py), used by a rule set written here."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from fionagw.deid import (
    Deidentifier,
    DeidSettings,
    FionaRules,
    ObjectContext,
    RuleSet,
    deidentifier_for,
)
from fionagw.deid.elements import put

DESCRIPTION, STUDY_DATE, METHOD = 0x00081030, 0x00080020, 0x00120063
PRIVATE_DATE = (0x0011, "ACME DATES", 0x01)


class Probe(RuleSet):
    """Writes what it saw: the original patient name (begin), the nesting (apply), the stamps."""

    tags = frozenset({DESCRIPTION, STUDY_DATE})
    private_dates = {PRIVATE_DATE: "DA"}

    def __init__(self, engine: Deidentifier) -> None:
        self.engine = engine
        self.applied: list[tuple[int, bool]] = []

    def begin(self, ds: Dataset, participant: str, event: str | None) -> object:
        return f"{ds.PatientName}/{participant}/{event}"

    def apply(self, ds: Dataset, tag: int, ctx: ObjectContext) -> None:
        self.applied.append((tag, "PatientName" in ds))
        if tag == STUDY_DATE:
            self.engine.apply_date_mode(ds, tag, "DA", ctx)
        else:
            put(ds, tag, "LO", f"seen {ctx.rule_state}")

    def finish(self, ds: Dataset, ctx: ObjectContext) -> None:
        put(ds, METHOD, "LO", [f"probe after {ds.PatientIdentityRemoved}", *self.engine.method])


def _study() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.StudyDate = "20200101"
    ds.StudyDescription = "Head Jane Doe"
    item = Dataset()
    item.StudyDescription = "inner"
    item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.9.7.2"
    ds.ReferencedImageSequence = Sequence([item])
    block = ds.private_block(0x0011, "ACME DATES", create=True)
    block.add_new(0x01, "DA", "20200101")
    block.add_new(0x02, "LO", "Jane Doe")
    return ds


def test_a_rule_set_decides_its_tags_at_every_level_and_finishes_last() -> None:
    settings = DeidSettings(project="P", secret="k", date_shift_days=10)
    engine = Deidentifier(settings, Probe)
    out = engine.deidentify(_study(), "P001", "baseline")
    assert engine.rule_set.applied == [
        (STUDY_DATE, True),
        (DESCRIPTION, True),
        (DESCRIPTION, False),
    ]
    assert out.StudyDescription == "seen Doe^Jane/P001/baseline"  # from the original object
    assert out.ReferencedImageSequence[0].StudyDescription == "seen Doe^Jane/P001/baseline"
    assert out.StudyDate == "20200111"  # the engine's date mode, asked for by the rule set
    assert out[METHOD].value[0] == "probe after YES" and out[METHOD].value[1:] == engine.method
    assert out.PatientName == "P001"
    # the private date is kept and shifted; the rest of its block goes
    assert out[0x00111001].value == "20200111" and out[0x00110010].value == "ACME DATES"
    assert 0x00111002 not in out


def test_without_a_rule_set_the_profile_decides() -> None:
    out = Deidentifier(DeidSettings(project="P", secret="k", date_shift_days=10)).deidentify(
        _study(), "P001"
    )
    assert "StudyDescription" not in out  # basic profile: X
    assert out.StudyDate == "20200111"
    assert not [e for e in out if e.tag.is_private]


@pytest.mark.parametrize(
    "settings",
    [
        DeidSettings.fiona("P"),
        DeidSettings(project="P", secret="k", tag_changes=("0008,1030=PROJECTNAME",)),
        DeidSettings(project="P", secret="k", regex_tag_changes=("0008,1030=(\\w+)",)),
    ],
)
def test_settings_that_need_a_rule_set_are_refused_without_one(settings: DeidSettings) -> None:
    assert settings.needs_rule_set
    with pytest.raises(ValueError, match="deidentifier_for"):
        Deidentifier(settings)
    assert isinstance(deidentifier_for(settings).rule_set, FionaRules)


def test_the_factory_adds_no_rule_set_to_plain_settings() -> None:
    settings = DeidSettings(project="P", secret="k")
    assert not settings.needs_rule_set
    assert deidentifier_for(settings).rule_set is None
