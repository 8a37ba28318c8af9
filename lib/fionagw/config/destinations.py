"""config.json ``destinations``: the named places de-identified studies go, each of a type.

    "destinations": {"research-pacs": {"type": "dicom", "host": "pacs.example.org", ...},
                     "research-folder": {"type": "folder", "path": "../data/outbox"}}

Destination types are pluggable: a type registers its name, its keys and its parse function
with :func:`register_destination_type`. ``parse(name, reader, site)`` validates the section
(raising ConfigError through ``reader.error``) and returns the type's settings: a small frozen
object, cheap to build (no connection, no DICOM library), whose ``destination()`` gives the
working destination when something is sent. The built-in types (folder, dicom, sftp, https) register
themselves in :mod:`fionagw.send`, which this module imports when a config is first parsed
(not at import: fionagw.send builds on fionagw.config).

Without a ``destinations`` key there is one, ``research-folder``: a folder DATADIR/outbox, so
a new gateway works out of the box.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fionagw.config.reader import SectionReader

if TYPE_CHECKING:
    from fionagw.config.site import SiteConfig
    from fionagw.send.base import Destination

DEFAULT_DESTINATION = "research-folder"
BUILTIN_TYPES_PACKAGE = "fionagw.send"  # registers folder, dicom, sftp, https when imported
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class DestinationSettings(Protocol):
    """What a type's parse function returns: one validated ``destinations.<name>`` section."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    def destination(self) -> Destination:
        """The working destination for these settings."""
        ...


DestinationParser = Callable[[str, SectionReader, "SiteConfig"], DestinationSettings]


@dataclass(frozen=True)
class DestinationType:
    name: str
    keys: tuple[str, ...]  # the keys of its section besides "type", sorted
    parse: DestinationParser


_TYPES: dict[str, DestinationType] = {}


def register_destination_type(name: str, keys: Iterable[str], parse: DestinationParser) -> None:
    """Make ``"type": name`` usable in destinations; ``keys``: the section's other keys."""
    _TYPES[name] = DestinationType(name, tuple(sorted(keys)), parse)


def destination_types() -> list[str]:
    _import_builtin_types()
    return sorted(_TYPES)


def destination_type_keys(name: str) -> tuple[str, ...]:
    """The keys (besides "type") a destination of type ``name`` may have; () if unknown."""
    _import_builtin_types()
    known = _TYPES.get(name)
    return known.keys if known else ()


def _import_builtin_types() -> None:
    importlib.import_module(BUILTIN_TYPES_PACKAGE)  # a dictionary look-up once imported


def parse_destinations(top: SectionReader, site: SiteConfig) -> dict[str, DestinationSettings]:
    """Every destination of the site's config by name (``top``: the whole config's reader;
    ``site``: its other settings, already validated)."""
    _import_builtin_types()
    if top.data.get("destinations") is None:
        spec = {"type": "folder", "path": str(site.paths.outbox)}
        r = SectionReader(top.file, spec, f"destinations.{DEFAULT_DESTINATION}.")
        return {DEFAULT_DESTINATION: _parse_one(DEFAULT_DESTINATION, r, site)}
    section = top.section("destinations")
    result: dict[str, DestinationSettings] = {}
    for name, spec in section.data.items():
        if not _NAME.match(name):
            raise section.error(
                name, "a destination name has 1-64 letters, digits, '.', '_' or '-'"
            )
        if not isinstance(spec, dict):
            raise section.error(name, 'expected an object with a "type"')
        result[name] = _parse_one(name, section.section(name), site)
    return result


def _parse_one(name: str, r: SectionReader, site: SiteConfig) -> DestinationSettings:
    kind = r.get("type", str)
    known = _TYPES.get(kind)
    if known is None:
        raise r.error("type", f"unknown type {kind!r} (known: {', '.join(sorted(_TYPES))})")
    r.reject_unknown(known.keys, what=f"a {kind} destination", ignored=("type",))
    return known.parse(name, r, site)
