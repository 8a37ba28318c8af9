"""The folder destination: a whole, durable copy per project/participant/study; resends overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.send import SendContext, SendError, load_destinations
from fionagw.send.folder import FolderDestination
from support import synth
from support.site import write_config

CONTEXT = SendContext("PROJ", "PROJ_001", "baseline", "2.25.1234567890")


@pytest.fixture
def study(tmp_path: Path) -> list[Path]:
    """Two series of a de-identified-looking output folder (S001/, S002/)."""
    return synth.write_study(
        tmp_path / "output",
        series=[synth.SeriesSpec("T1", 4, modality="MR"), synth.SeriesSpec("T2", 3, modality="MR")],
        rows=32,
        cols=32,
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_study_copied_under_project_participant_study(tmp_path, study):
    dest = FolderDestination("out", tmp_path / "outbox")
    result = dest.send_study(study, CONTEXT)
    assert result.ok and result.sent == len(study) == 7
    assert result.warnings == [] and result.failed == [] and result.error == ""
    target = tmp_path / "outbox" / "PROJ" / "PROJ_001" / "2.25.1234567890"
    copied = _tree(target)
    assert copied == {str(p.relative_to(tmp_path / "output")): p.read_bytes() for p in study}
    assert sorted({k.split("/")[0] for k in copied}) == ["S001", "S002"]
    assert _tree(tmp_path / "outbox").keys() == {
        f"PROJ/PROJ_001/2.25.1234567890/{k}" for k in copied
    }
    assert all(oct(p.stat().st_mode & 0o777) == "0o640" for p in target.rglob("*.dcm"))


def test_resend_overwrites_without_duplicates(tmp_path, study):
    dest = FolderDestination("out", tmp_path / "outbox")
    assert dest.send_study(study, CONTEXT).ok
    before = _tree(tmp_path / "outbox")
    again = dest.send_study(study, CONTEXT)
    assert again.ok and again.sent == len(study)
    assert _tree(tmp_path / "outbox") == before  # same names, same bytes, no temp files left


def test_one_series_keeps_its_own_folder_name_relative_to_common_parent(tmp_path, study):
    dest = FolderDestination("out", tmp_path / "outbox")
    one_series = [p for p in study if p.parent.name == "S002"]
    assert dest.send_study(one_series, CONTEXT).ok
    names = sorted(_tree(tmp_path / "outbox"))
    assert names == [f"PROJ/PROJ_001/2.25.1234567890/{p.name}" for p in sorted(one_series)]


def test_missing_source_file_fails_alone(tmp_path, study):
    dest = FolderDestination("out", tmp_path / "outbox")
    gone = study[2]
    gone.unlink()
    result = dest.send_study(study, CONTEXT)
    assert not result.ok and result.error == ""
    assert result.sent == len(study) - 1
    assert [p for p, _ in result.failed] == [gone]
    reason = result.failed[0][1]
    assert "No such file or directory" in reason and "\n" not in reason


@pytest.mark.parametrize("field", ["project", "participant", "study_uid"])
@pytest.mark.parametrize("value", ["../escape", "", "..", "a/b"])
def test_unsafe_context_never_leaves_the_folder(tmp_path, study, field, value):
    context = SendContext(**{**CONTEXT.__dict__, field: value})
    result = FolderDestination("out", tmp_path / "outbox").send_study(study, context)
    assert not result.ok and result.sent == 0 and "cannot be used as a folder name" in result.error
    assert not (tmp_path / "escape").exists() and not (tmp_path / "outbox").exists()


def test_unwritable_destination_is_an_error_not_a_loss(tmp_path, study):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder should be")
    dest = FolderDestination("out", blocker / "outbox")  # mkdir fails (ENOTDIR), even as root
    result = dest.send_study(study, CONTEXT)
    assert not result.ok and result.sent == 0
    assert "cannot create" in result.error and "Not a directory" in result.error
    assert "\n" not in result.error
    with pytest.raises(SendError) as err:
        dest.check()
    assert str(err.value) == f"folder {blocker / 'outbox'}: not writable: Not a directory"


def test_check_writable_folder(tmp_path):
    dest = FolderDestination("out", tmp_path / "new" / "outbox")
    text = dest.check()
    assert text.startswith(f"folder {tmp_path / 'new' / 'outbox'}: writable, ") and text.endswith(
        " GB free"
    )
    assert list((tmp_path / "new" / "outbox").iterdir()) == []  # the probe is gone


def test_default_destination_writes_to_datadir_outbox(tmp_path, study):
    cfg = load_config(write_config(tmp_path))
    dest = load_destinations(cfg)["research-folder"]
    assert dest.send_study(study, CONTEXT).ok
    assert len(list((cfg.datadir / "outbox" / "PROJ" / "PROJ_001").rglob("*.dcm"))) == len(study)


def test_empty_file_list_sends_nothing(tmp_path):
    result = FolderDestination("out", tmp_path / "outbox").send_study([], CONTEXT)
    assert result.ok and result.sent == 0 and not (tmp_path / "outbox").exists()
