"""A project's de-identification settings: the ``deid`` block of config/projects.yml.

    projects:
      DEMO:
        deid:
          mode: keyed              # keyed | fiona (default: fiona with the redcap tracker, whose
                                   # projects come from FIONA's DataTransferProjects; else keyed)
          uid_root: "1.2.826.0.1.3680043.10.1234"   # keyed only; default 2.25.<decimal>
          date_mode: shift         # shift | keep | remove
          date_shift_days: 42      # a fixed shift (fiona default 42; keyed default: a keyed
                                   # per-participant offset in date_shift_range)
          date_shift_range: [-730, -30]
          times: keep              # keep | clean
          options: [retain_patient_characteristics]   # PS3.15 options (profile.OPTION_CODES);
                                   # default: profile.DEFAULT_OPTIONS (clean_descriptors,
                                   # retain_patient_characteristics, clean_structured_content)
          private_keep: ["0019,SIEMENS MR HEADER,0c"]  # private group, creator, element offset
          keep_diffusion: true     # the built-in diffusion private allow-list
          keep: ["0018,1251"]      # unlisted public attributes to keep (beyond keep_list.KEEP)
          tag_changes: ["0008,0080=PROJECTNAME"]       # tagchange.py
          regex_tag_changes: ["0032,4000=^\\[(.*)\\]"]
          sponsor: "..."           # (0012,0010); default: the project name
          site_id: "..."           # (0012,0030)
          site_name: "..."         # (0012,0031)
          pixels: {...}            # burned-in text (deid/pixels.py parse_pixel_settings):
                                   # enabled, mode, min_confidence, exclusions, patterns,
                                   # allow, regions, verify_rounds

The project's import rule 1 (``import_rule: {tag, regexp}``, FIONA's
``project_import_rule_1_*``) becomes one more regex tag change, as FIONA passes
``--regtagchange "<tag>=<regexp>"``.

Keyed mode needs a per-project secret: ``"deid_keys": {"<PROJECT>": "<hex or text>"}`` in the
secrets file (``tracker.secrets_file``, mode 0600), else ``DATADIR/keys/<PROJECT>.key`` (32
random bytes, created on first use with mode 0600; its creation is logged, the key never is).
The UIDs and date shifts of the project depend on that key: back it up. Every problem raises
ConfigError with one line naming the file, the key and what is wrong.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from fionagw.config import (
    ConfigError,
    SecretFileMissing,
    SiteConfig,
    load_secrets,
    read_secret_file,
)
from fionagw.config.projects import Project
from fionagw.deid.engine import DeidSettings
from fionagw.deid.pixels import PixelSettings, parse_pixel_settings
from fionagw.deid.profile import DEFAULT_OPTIONS, OPTION_CODES
from fionagw.deid.tagchange import parse_tag_change
from fionagw.ops.perms import KEY_DIR_MODE, SECRET_MODE

log = logging.getLogger("fionagw.deid")

KEYS = (
    "mode",
    "uid_root",
    "date_mode",
    "date_shift_days",
    "date_shift_range",
    "times",
    "options",
    "private_keep",
    "keep_diffusion",
    "keep",
    "tag_changes",
    "regex_tag_changes",
    "sponsor",
    "site_id",
    "site_name",
    "pixels",
)
KEY_BYTES = 32
_PRIVATE = re.compile(r"^\s*([0-9A-Fa-f]{4})\s*,\s*(\S(?:.*\S)?)\s*,\s*([0-9A-Fa-f]{2})\s*$")
_TAG = re.compile(r"^\s*([0-9A-Fa-f]{4})\s*,\s*([0-9A-Fa-f]{4})\s*$")
_HEX_KEY = re.compile(r"(?:[0-9A-Fa-f]{2}){16,}")


def settings_for_project(project: Project, cfg: SiteConfig) -> DeidSettings:
    """The DeidSettings of ``project`` (ConfigError on a bad value or an unusable key)."""
    source = _source(cfg)
    spec = project.deid or {}
    where = f"projects.{project.name}.deid"

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(source, f"{where}.{key}" if key else where, problem)

    if not isinstance(spec, dict):
        raise fail("", "expected a mapping")
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown key (known: {', '.join(KEYS)})")
    try:  # checked here too, so check-config and fiona deid name a bad pixels block
        parse_pixel_settings(spec.get("pixels"), f"{where}.pixels")
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(source, key, problem) from None

    def get(key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = spec.get(key)
        if value is None:
            return default
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise fail(key, f"expected {_kind(kind)}, got {value!r}")
        return value

    mode = get("mode", str, "fiona" if cfg.tracker.backend == "redcap" else "keyed")
    if mode not in ("fiona", "keyed"):
        raise fail("mode", f'expected "fiona" or "keyed", got {mode!r}')
    date_mode = get("date_mode", str, "shift")
    if date_mode not in ("shift", "keep", "remove"):
        raise fail("date_mode", f'expected "shift", "keep" or "remove", got {date_mode!r}')
    times = get("times", str, "keep")
    if times not in ("keep", "clean"):
        raise fail("times", f'expected "keep" or "clean", got {times!r}')
    shift_days = get("date_shift_days", int, 42 if mode == "fiona" else None)
    if shift_days is not None and abs(shift_days) > 36500:
        raise fail("date_shift_days", f"expected days within +-36500, got {shift_days}")
    shift_range = get("date_shift_range", list, [-730, -30])
    if (
        len(shift_range) != 2
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in shift_range)
        or shift_range[0] > shift_range[1]
    ):
        raise fail(
            "date_shift_range", f"expected [low, high] days with low <= high, got {shift_range!r}"
        )
    uid_root = get("uid_root", str, None)
    if uid_root is not None:
        if mode != "keyed":
            raise fail("uid_root", "applies to keyed mode only (fiona UIDs use 1.3.6.1.4.1.45037)")
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", uid_root) or len(uid_root) > 40:
            raise fail(
                "uid_root",
                f"expected a dotted-digit UID root of at most 40 characters, got {uid_root!r}",
            )
    options = _str_list(
        get("options", list, sorted(DEFAULT_OPTIONS)),
        lambda: fail("options", "expected a list of option names"),
    )
    for name in options:
        if name not in OPTION_CODES:
            raise fail(
                "options", f"unknown option {name!r} (known: {', '.join(sorted(OPTION_CODES))})"
            )
        if name in ("retain_full_dates", "retain_modified_dates", "retain_safe_private"):
            raise fail("options", f"{name} follows date_mode / private_keep, do not list it")
    private_keep = []
    for i, text in enumerate(get("private_keep", list, [])):
        m = _PRIVATE.match(text) if isinstance(text, str) else None
        if not m or not int(m.group(1), 16) & 1:
            raise fail(
                f"private_keep[{i}]", f'expected "gggg,CREATOR,ee" with an odd group, got {text!r}'
            )
        private_keep.append((int(m.group(1), 16), m.group(2), int(m.group(3), 16)))
    keep_tags = []
    for i, text in enumerate(get("keep", list, [])):
        m = _TAG.match(text) if isinstance(text, str) else None
        if not m or int(m.group(1), 16) & 1:
            raise fail(f"keep[{i}]", f'expected "gggg,eeee" of a public attribute, got {text!r}')
        keep_tags.append(int(m.group(1) + m.group(2), 16))
    changes = {}
    for key, regex in (("tag_changes", False), ("regex_tag_changes", True)):
        items = get(key, list, [])
        for i, text in enumerate(items):
            try:
                parse_tag_change(text, regex=regex)
            except ValueError as exc:
                raise fail(f"{key}[{i}]", str(exc)) from None
        changes[key] = list(items)
    if project.import_rule_tag and project.import_rule_regexp:
        rule = f"{project.import_rule_tag}={project.import_rule_regexp}"
        try:
            parse_tag_change(rule, regex=True)
        except ValueError as exc:
            raise ConfigError(source, f"projects.{project.name}.import_rule", str(exc)) from None
        changes["regex_tag_changes"].append(rule)
    common = {
        "date_mode": date_mode,
        "date_shift_days": shift_days,
        "times": times,
        "date_shift_range": (shift_range[0], shift_range[1]),
        "options": frozenset(options),
        "private_keep": tuple(private_keep),
        "keep_diffusion": get("keep_diffusion", bool, True),
        "keep_tags": tuple(keep_tags),
        "tag_changes": tuple(changes["tag_changes"]),
        "regex_tag_changes": tuple(changes["regex_tag_changes"]),
        "sponsor": get("sponsor", str, None),
        "site_id": get("site_id", str, None),
        "site_name": get("site_name", str, None),
    }
    if mode == "fiona":
        settings = DeidSettings.fiona(project.name, **common)
    else:
        needs_key = "retain_uids" not in options or (date_mode == "shift" and shift_days is None)
        settings = DeidSettings(
            project=project.name,
            uid_scheme="keyed",
            uid_root=uid_root,
            secret=project_key(project.name, cfg) if needs_key else b"",
            **common,
        )
    try:
        settings.validate()
    except ValueError as exc:
        raise fail("", str(exc)) from None
    return settings


def project_key(project: str, cfg: SiteConfig) -> bytes:
    """The project's secret: secrets file ``deid_keys``, else the key file (created if missing)."""
    secrets = cfg.tracker.secrets_file
    if secrets is not None:
        value = load_secrets(secrets).get("deid_keys", {})
        if not isinstance(value, dict):
            raise ConfigError(secrets, "deid_keys", 'expected an object {"<project>": "<key>"}')
        if project in value:
            key = value[project]
            if not isinstance(key, str) or not key.strip():
                raise ConfigError(secrets, f"deid_keys.{project}", "expected a non-empty string")
            return bytes.fromhex(key) if _HEX_KEY.fullmatch(key) else key.encode("utf-8")
    return _key_file(cfg.paths.project_key(project), project)


def _key_file(path: Path, project: str) -> bytes:
    try:
        return read_secret_file(path)
    except SecretFileMissing:
        pass
    try:
        path.parent.mkdir(mode=KEY_DIR_MODE, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
        try:
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic create-if-missing: a concurrent first use keeps one key
            log.warning(
                "created a new de-identification key; back it up (the project's UIDs and "
                "date shifts depend on it)",
                extra={"project": project, "key_file": str(path)},
            )
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(path, "", f"cannot create the key file: {exc.strerror}") from None
    return read_secret_file(path)


def _source(cfg: SiteConfig) -> Path | str:
    if cfg.tracker.backend == "redcap":
        return f"REDCap DataTransferProjects ({cfg.tracker.redcap_url})"
    return cfg.tracker.projects_file or "projects.yml"


def _str_list(value: list, fail) -> list[str]:  # type: ignore[no-untyped-def]
    if not all(isinstance(v, str) for v in value):
        raise fail()
    return value


def _kind(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", list: "a list", bool: "true or false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def pixel_settings_for_project(project: Project, cfg: SiteConfig | None = None) -> PixelSettings:
    """The project's burned-in text settings (``deid.pixels``), with FIONA's
    rewritepixelexclusions (Project.pixel_exclusions) added; ConfigError on a bad value."""
    spec = (project.deid or {}).get("pixels") if isinstance(project.deid, dict) else None
    try:
        settings = parse_pixel_settings(spec, f"projects.{project.name}.deid.pixels")
        extra = []
        for tag, regexp in getattr(project, "pixel_exclusions", ()):
            extra.append({"tag": tag, "regexp": regexp})
        if extra:
            more = parse_pixel_settings(
                {"exclusions": extra}, f"{project.name} rewritepixelexclusions"
            )
            settings = replace(settings, exclusions=settings.exclusions + more.exclusions)
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(_source(cfg) if cfg else "projects", key, problem) from None
    return settings
