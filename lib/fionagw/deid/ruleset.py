"""The hook between the de-identification engine and a project's rule set.

The engine (engine.py) applies the PS3.15 profile to every element. A rule set (such as
fiona_rules.FionaRules: DICOMAnonymizer's table and the project's tag changes) takes over
the public tags it lists and may add elements at the end. For each object the engine calls:

1. ``begin(ds, participant, event)`` on the original object, before anything changes; the
   result is kept as ``ctx.rule_state`` for the other two hooks;
2. ``apply(ds, tag, ctx)`` instead of the profile action, for each element whose tag is in
   ``tags``, at every nesting level (``ds`` is the dataset or sequence item holding it);
3. ``finish(ds, ctx)`` on the top level, after the engine's own stamps, so the rules win.

Private elements listed in ``private_dates`` are kept (added to the private allow-list) and
follow the project's date mode like the public dates.

A rule set is made for one engine: ``Deidentifier(settings, rule_set=factory)`` calls
``factory(engine)``. Of the engine it uses the public ``settings``, ``uid``, ``walk_items``,
``apply_date_mode``, ``retain_uids`` and ``method``; elements.py reads and replaces elements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from types import MappingProxyType

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from fionagw.deid.elements import elements_of
from fionagw.deid.release import (
    INSTITUTION_TAGS,
    PATIENT_TAGS,
    STAFF_TAGS,
    Identifiers,
    collect_identifiers,
)

# the elements whose original values Clean removes from retained text
IDENTITY_TAGS = frozenset(
    {0x00080005, 0x00101002}.union(
        *PATIENT_TAGS.values(), *INSTITUTION_TAGS.values(), *STAFF_TAGS.values()
    )
)


class ObjectContext:
    """The object being de-identified, as the engine and the hooks see it.

    days: the offset added to its dates (None unless the date mode is shift); rule_state:
    what the rule set's ``begin`` returned; ids: its identifiers, collected on first use from
    a snapshot of the original identity elements (taken before anything changes).
    """

    def __init__(
        self, days: int | None, ds: Dataset, cache: dict[tuple, Identifiers] | None = None
    ) -> None:
        self.days = days
        elems = elements_of(ds)
        self._snapshot = Dataset({t: elems[t] for t in IDENTITY_TAGS if t in elems})
        self._ids: Identifiers | None = None
        self._cache = cache
        self.rule_state: object = None

    @property
    def ids(self) -> Identifiers:
        if self._ids is None:
            key = self._key() if self._cache is not None else None
            ids = self._cache.get(key) if key is not None else None
            if ids is None:
                ids = collect_identifiers(self._snapshot, retain_uids=True)
                if key is not None:
                    if len(self._cache) > 16:
                        self._cache.clear()
                    self._cache[key] = ids
            self._ids = ids
        return self._ids

    def _key(self) -> tuple | None:
        """The snapshot's values (the objects of one study share them): raw bytes, or the
        text of an element already converted (the release check's collection converts);
        None (no caching) when it holds a converted sequence."""
        key = []
        for tag, elem in elements_of(self._snapshot).items():
            if isinstance(elem, RawDataElement):
                key.append((int(tag), elem.value))
            elif elem.VR == "SQ":
                return None
            else:
                key.append((int(tag), str(elem.value)))
        return tuple(key)


class RuleSet(ABC):
    """Project rules the engine applies on top of the PS3.15 profile (see module docstring)."""

    # public tags whose elements ``apply`` decides; looked up for every element, so a set/dict
    tags: Collection[int] = frozenset()
    # (group, private creator, element offset) -> VR of a kept private date
    private_dates: Mapping[tuple[int, str, int], str] = MappingProxyType({})

    def begin(self, ds: Dataset, participant: str, event: str | None) -> object:
        """Per-object state, from the original object (``ctx.rule_state``)."""
        return None

    @abstractmethod
    def apply(self, ds: Dataset, tag: int, ctx: ObjectContext) -> None:
        """De-identify the element ``tag`` of ``ds`` (present; one of ``tags``)."""

    def finish(self, ds: Dataset, ctx: ObjectContext) -> None:  # noqa: B027 (optional hook)
        """Last changes to the top-level object, after the engine's stamps."""
