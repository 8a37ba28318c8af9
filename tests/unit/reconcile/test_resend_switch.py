"""projects.yml ``resend_missing``: the per-project switch of the reconciliation's resend."""

from __future__ import annotations

import pytest

from fionagw.config.projects import ProjectsError, load_projects


def test_off_by_default_on_when_set(tmp_path):
    f = tmp_path / "projects.yml"
    f.write_text(
        "projects:\n"
        "  A: {participant_id: '^A[0-9]+$', resend_missing: true}\n"
        "  B: {participant_id: '^B[0-9]+$'}\n"
    )
    projects, _ = load_projects(f)
    assert projects["A"].resend_missing is True and projects["B"].resend_missing is False


def test_a_non_boolean_is_one_line_naming_the_key(tmp_path):
    f = tmp_path / "projects.yml"
    f.write_text("projects:\n  A: {participant_id: '^A$', resend_missing: sometimes}\n")
    with pytest.raises(ProjectsError) as err:
        load_projects(f)
    assert "projects.A.resend_missing" in str(err.value) and "\n" not in str(err.value)
