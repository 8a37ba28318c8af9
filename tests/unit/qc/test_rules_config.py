"""QC rules of REDCap projects in config.json (``qc.projects``): read, validated at load with a
one-line error, and chosen over nothing for a project without its own ``qc`` block."""

from __future__ import annotations

from pathlib import Path

import pytest

from fionagw.config import ConfigError, load_config
from fionagw.config.projects import Project
from fionagw.qc.run import DEFAULTS, rules_for
from support.site import write_config


def test_config_json_rules_for_redcap_projects(tmp_path: Path) -> None:
    cfg = load_config(
        write_config(tmp_path, qc={"projects": {"DTI": {"gates": ["diffusion"],
                     "diffusion": {"min_directions": 30, "b_values": [0, 1000]}}}})
    )  # fmt: skip
    rules = rules_for(cfg, Project("DTI", "^D"))
    assert rules.gates == ("diffusion",) and rules.diffusion.min_directions == 30
    assert rules_for(cfg, Project("OTHER", "^O")) is DEFAULTS  # no rules: nothing gated
    own = Project("DTI", "^D", qc=DEFAULTS.__class__(gates=("lossless",)))
    assert rules_for(cfg, own).gates == ("lossless",)  # projects.yml's own block wins


@pytest.mark.parametrize(
    ("qc", "message"),
    [
        ({"project": {}}, "qc.project: unknown key for qc (did you mean projects?)"),
        ({"projects": {"P": {"gate": []}}}, "qc.projects.P.gate: unknown key for qc rules"),
        ({"projects": {"P": {"diffusion": {"b_values": ["x"]}}}},
         "qc.projects.P.diffusion.b_values: expected a list of numbers"),
        ({"projects": {"P": {"study_description": "("}}},
         "qc.projects.P.study_description: not a valid regular expression"),
    ],
)  # fmt: skip
def test_bad_rules_are_refused_at_load(tmp_path: Path, qc: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, qc=qc))
    assert message in str(err.value) and "\n" not in str(err.value)
