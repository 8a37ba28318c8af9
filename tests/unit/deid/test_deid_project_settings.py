"""Per-project de-identification settings (projects.yml deid block), keys, one-line errors."""

from __future__ import annotations

import json
import logging
import multiprocessing
import stat
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from fionagw.config import ConfigError, load_config
from fionagw.config.projects import Project, load_projects
from fionagw.deid import deidentifier_for, keyed_uid
from fionagw.deid.project_settings import project_key, settings_for_project
from support.site import ROOT, write_config


def site(tmp_path: Path, **tracker) -> object:
    tracker.setdefault("projects_file", str(tmp_path / "projects.yml"))
    return load_config(write_config(tmp_path, tracker=tracker))


def project(name: str = "DEMO", **deid) -> Project:
    return Project(name=name, participant_id=r"^DEMO\d{3}$", deid=deid)


def _uid(settings, uid: str = "1.2.826.0.1.3680043.9.7.1") -> str:
    return deidentifier_for(settings).uid(uid)


# --- modes and keys ---------------------------------------------------------------------------


def test_default_mode_keyed_with_local_tracker_and_key_file(tmp_path, caplog):
    cfg = site(tmp_path)
    with caplog.at_level(logging.INFO, logger="fionagw.deid"):
        settings = settings_for_project(project(), cfg)
    assert (settings.table, settings.uid_scheme, settings.date_shift_days) == (
        "ps3.15",
        "keyed",
        None,
    )
    key_file = cfg.datadir / "keys" / "DEMO.key"
    key = key_file.read_bytes()
    assert len(key) == 32 and settings.key == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    created = [r for r in caplog.records if "created a new de-identification key" in r.getMessage()]
    assert len(created) == 1 and created[0].project == "DEMO"
    assert key.hex() not in caplog.text and repr(key) not in caplog.text
    again = settings_for_project(project(), cfg)  # reused, not recreated: a resend maps alike
    assert again.key == key and _uid(again) == _uid(settings) == keyed_uid(
        "1.2.826.0.1.3680043.9.7.1", key
    )
    assert len([r for r in caplog.records if "created" in r.getMessage()]) == 1
    assert not list(key_file.parent.glob(".*tmp"))


def _first_use(args) -> bytes:
    config, name = args
    return project_key(name, load_config(config))


def test_concurrent_first_use_makes_one_key(tmp_path):
    config = write_config(tmp_path)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        keys = pool.map(_first_use, [(config, "RACE")] * 8)
    assert len(set(keys)) == 1 and len(keys[0]) == 32


def test_redcap_backend_defaults_to_fiona_mode(tmp_path):
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"tokens": {}}))
    secrets.chmod(0o600)
    cfg = site(
        tmp_path,
        backend="redcap",
        redcap_url="https://redcap.invalid/api/",
        secrets_file=str(secrets),
    )
    proj = Project(
        name="LEG",
        participant_id=r"^LEG\d{4}$",
        import_rule_tag="0032,4000",
        import_rule_regexp=r"^\[(.*)\]",
    )
    settings = settings_for_project(proj, cfg)
    assert (settings.table, settings.uid_scheme, settings.date_shift_days) == ("fiona", "fiona", 42)
    assert settings.regex_tag_changes == (r"0032,4000=^\[(.*)\]",)  # FIONA's --regtagchange
    assert not (cfg.datadir / "keys").exists()  # FIONA mode needs no secret
    ds = Dataset()
    ds.StudyComments = "[Trial 7] extra"
    assert deidentifier_for(settings).deidentify(ds, "LEG0001").StudyComments == "Trial 7 "


def test_key_from_secrets_file(tmp_path):
    secrets = tmp_path / "secrets.json"
    hex_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    secrets.write_text(
        json.dumps({"tokens": {}, "deid_keys": {"DEMO": hex_key, "TXT": "a passphrase"}})
    )
    secrets.chmod(0o600)
    cfg = site(tmp_path, secrets_file=str(secrets))
    assert settings_for_project(project(), cfg).key == bytes.fromhex(hex_key)
    assert settings_for_project(project("TXT"), cfg).key == b"a passphrase"
    other = settings_for_project(project("OTHER"), cfg)  # not listed: its key file
    assert other.key == (cfg.datadir / "keys" / "OTHER.key").read_bytes()
    secrets.chmod(0o644)
    with pytest.raises(ConfigError) as err:
        settings_for_project(project(), cfg)
    assert str(err.value).startswith(f"{secrets}: mode 0644") and "chmod 600" in str(err.value)
    assert hex_key not in str(err.value)


def test_missing_secrets_file_is_an_error_not_a_new_key(tmp_path):
    cfg = site(tmp_path, secrets_file=str(tmp_path / "gone.json"))
    with pytest.raises(ConfigError, match="gone.json: file not found"):
        settings_for_project(project(), cfg)
    assert not (cfg.datadir / "keys").exists()


def test_world_readable_or_unreadable_key_file(tmp_path):
    cfg = site(tmp_path)
    key_file = cfg.datadir / "keys" / "DEMO.key"
    settings_for_project(project(), cfg)
    key_file.chmod(0o644)
    with pytest.raises(ConfigError) as err:
        settings_for_project(project(), cfg)
    assert str(err.value) == (
        f"{key_file}: mode 0644 lets group or others read the secret; run: chmod 600 {key_file}"
    )
    key_file.unlink()
    key_file.symlink_to(tmp_path / "elsewhere.key")  # O_NOFOLLOW: a link is not read
    with pytest.raises(ConfigError) as err:
        settings_for_project(project(), cfg)
    assert str(err.value).startswith(f"{key_file}: cannot read") and "\n" not in str(err.value)
    key_file.unlink()
    key_file.mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        settings_for_project(project(), cfg)


def test_retained_uids_with_fixed_shift_need_no_key(tmp_path):
    cfg = site(tmp_path)
    settings = settings_for_project(project(options=["retain_uids"], date_shift_days=-100), cfg)
    assert settings.key == b"" and not (cfg.datadir / "keys").exists()


# --- every key ----------------------------------------------------------------------------------


def test_every_key_reaches_the_settings(tmp_path):
    cfg = site(tmp_path)
    settings = settings_for_project(
        project(
            mode="keyed",
            uid_root="1.2.826.0.1.3680043.10.99",
            date_mode="shift",
            date_shift_range=[-100, -50],
            times="clean",
            options=["retain_patient_characteristics"],
            private_keep=["0019,SIEMENS MR HEADER,0c"],
            keep_diffusion=False,
            tag_changes=["0008,0080=PROJECTNAME"],
            regex_tag_changes=[r"0032,4000=(\d+)"],
            sponsor="Uni",
            site_id="S1",
            site_name="Bergen",
        ),
        cfg,
    )
    assert settings.uid_root == "1.2.826.0.1.3680043.10.99"
    assert settings.date_shift_range == (-100, -50) and settings.times == "clean"
    assert settings.options == frozenset({"retain_patient_characteristics"})
    assert settings.private_keep == ((0x0019, "SIEMENS MR HEADER", 0x0C),)
    assert settings.keep_diffusion is False
    assert settings.tag_changes == ("0008,0080=PROJECTNAME",)
    assert settings.regex_tag_changes == (r"0032,4000=(\d+)",)
    assert (settings.sponsor, settings.site_id, settings.site_name) == ("Uni", "S1", "Bergen")
    assert _uid(settings).startswith("1.2.826.0.1.3680043.10.99.")
    fiona = settings_for_project(project(mode="fiona", date_shift_days=10, date_mode="shift"), cfg)
    assert (fiona.table, fiona.date_shift_days, fiona.secret) == ("fiona", 10, b"")
    assert settings_for_project(project(date_mode="keep"), cfg).date_mode == "keep"


@pytest.mark.parametrize(
    "deid,key,problem",
    [
        ({"mode": "anonymous"}, "mode", 'expected "fiona" or "keyed"'),
        ({"colour": 1}, "colour", "unknown key"),
        ({"date_mode": "blur"}, "date_mode", "expected"),
        ({"times": True}, "times", "expected a string"),
        ({"date_shift_days": "42"}, "date_shift_days", "expected an integer"),
        ({"date_shift_days": 99999}, "date_shift_days", "within"),
        ({"date_shift_range": [10, -10]}, "date_shift_range", "low <= high"),
        ({"date_shift_range": [1]}, "date_shift_range", "low <= high"),
        ({"uid_root": "1.2.abc"}, "uid_root", "dotted-digit"),
        ({"mode": "fiona", "uid_root": "1.2.3"}, "uid_root", "keyed mode only"),
        ({"options": ["retain_everything"]}, "options", "unknown option"),
        ({"options": ["retain_full_dates"]}, "options", "follows date_mode"),
        ({"options": "retain_uids"}, "options", "expected a list"),
        ({"private_keep": ["0018,ACME,10"]}, "private_keep[0]", "odd group"),
        ({"private_keep": ["0019,ACME"]}, "private_keep[0]", "gggg,CREATOR,ee"),
        ({"keep_diffusion": "yes"}, "keep_diffusion", "true or false"),
        ({"tag_changes": ["0008,0080=X", "0010,0010=Someone"]}, "tag_changes[1]", "participant ID"),
        ({"tag_changes": ["nonsense"]}, "tag_changes[0]", "gggg,eeee=VALUE"),
        ({"regex_tag_changes": ["0032,4000=(("]}, "regex_tag_changes[0]", "regular expression"),
        ({"sponsor": 7}, "sponsor", "expected a string"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path, deid, key, problem):
    cfg = site(tmp_path)
    with pytest.raises(ConfigError) as err:
        settings_for_project(project(**deid), cfg)
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'projects.yml'}: projects.DEMO.deid.{key}: "), text
    assert problem in text and "\n" not in text


def test_bad_import_rule(tmp_path):
    cfg = site(tmp_path)
    proj = Project(
        name="P", participant_id=".*", import_rule_tag="32,4000", import_rule_regexp="(x)"
    )
    with pytest.raises(ConfigError, match=r"projects\.P\.import_rule: expected"):
        settings_for_project(proj, cfg)
    proj.import_rule_regexp = ""  # no regexp: no rule, as FIONA
    assert settings_for_project(proj, cfg).regex_tag_changes == ()


def test_shipped_examples_in_projects_yml(tmp_path):
    """config/projects.yml: the LEGACY fiona example as shipped, DEMO's commented keyed example
    uncommented."""
    text = (ROOT / "config" / "projects.yml").read_text()
    lines = text.splitlines()
    start = lines.index("    # deid:")
    out = lines[:start]
    for line in lines[start:]:
        if line.startswith("    #   ") or line == "    # deid:":
            out.append("    " + line[6:])
        else:
            out.append(line)
    (tmp_path / "projects.yml").write_text("\n".join(out) + "\n")
    projects, _ = load_projects(tmp_path / "projects.yml")
    cfg = site(tmp_path)
    demo = settings_for_project(projects["DEMO"], cfg)
    assert demo.uid_scheme == "keyed" and demo.private_keep and demo.tag_changes
    assert demo.regex_tag_changes == ("0032,4000=^STUDY ([A-Z0-9]+)",)
    legacy = settings_for_project(projects["LEGACY"], cfg)
    assert legacy.table == "fiona" and legacy.regex_tag_changes == ()  # its regexp is empty
    shipped, _ = load_projects(ROOT / "config" / "projects.yml")
    assert shipped["DEMO"].deid == {} and shipped["LEGACY"].deid == {"mode": "fiona"}
