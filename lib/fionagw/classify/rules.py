"""The classifyRules.json engine: FIONA's series classification, compiled once, run per image.

File syntax (FIONA's): a JSON array of {type, id?, description?, check?, rules: [entry...]}.
An entry is {tag, value?, operator?, negate?, approxLevel?}, {rule: id} or {notrule: id}.
See docs/configuration.md for the syntax. Differences from FIONA, all deliberate fixes:

* ``exist``/``notexist`` work (FIONA raises NameError); ``exists``/``notexists`` (the ABCD
  readme's spelling) are accepted as the same operators.
* ``approx`` works on pydicom MultiValue and fails on a length mismatch (FIONA passed it).
* ``negate`` inverts the whole entry for every operator (FIONA's approx negated per element).
* ``notrule`` toggles each inlined entry, so an already negated entry is un-negated (FIONA
  overwrote the flag, giving NOT c for notrule of NOT c).
* ``contains`` on a number or person name tests the text; membership in a multi-value also
  matches by text (256 matches "256"); FIONA raised TypeError and stopped the daemon.
* A named tag that is a pydicom keyword gives the element's value (FIONA: the DataElement).
* An element that exists but is empty reads as "" (FIONA: the text "None").
* ``[g, e, i]`` out of range or on a single value other than i=0 reads as missing.
* A reference to an id defined by several rules, an unknown id or a cycle is a load error
  (FIONA printed a message and later crashed on the unresolved entry).
* ``check: SeriesLevel`` works per type: the type stays only if, for every image, at least
  one rule of that type passes (FIONA removed it when any one such rule failed, even if
  another rule of the same type passed, which broke "same type = OR").
* ClassifyType as a named tag sees the types this image has gained so far, and the rules are
  re-run until no type is added (FIONA saw only the previous images' types: a one-image lag,
  so e.g. a 3-image localizer was never classified "localizer").
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from fionagw.classify.elements import element_value

log = logging.getLogger(__name__)

MAX_PASSES = 100  # FIONA's bound on reference inlining
_CLASSIFY_PASSES = 8  # re-runs while ClassifyType-based rules keep adding types
ALIASES = {"NumImages": "NumSlices"}  # RIS renamed FIONA's series key in 12 rules
_OPERATORS = {"regexp", "contains", "==", "!=", "<", ">", "approx", "exist", "notexist"}
_OP_ALIASES = {"exists": "exist", "notexists": "notexist"}
_NUMERIC = {"==", "!=", "<", ">"}
_MISSING = object()


class RulesError(Exception):
    """A rules-file problem; str() is one line naming the file, the rule and the problem."""


class Classification(NamedTuple):
    types: list[str]  # ClassifyType after this image, in order
    failed: list[str]  # SeriesLevel types some image has failed (never come back)


@dataclass(frozen=True, slots=True)
class TagRef:
    """A pre-resolved tag form: ["Name"], ["0x08","0x70"] or [g, e, index]."""

    name: str | None = None
    alias: str | None = None  # series key to try when ``name`` is absent (NumImages)
    tag: int | None = None  # DICOM tag (numeric form, or the keyword of a named form)
    index: int | None = None


def _int(text: Any) -> int:
    if isinstance(text, bool):
        raise ValueError
    if isinstance(text, int):
        return text
    if isinstance(text, str):
        return int(text.strip(), 0)
    raise ValueError


def parse_tag(form: Any) -> TagRef:
    """Parse one of the three tag forms; ValueError (with a message) when malformed."""
    if not isinstance(form, list) or not 1 <= len(form) <= 3:
        raise ValueError(f"tag must be a list of 1 to 3 entries, got {json.dumps(form)}")
    if len(form) == 1:
        name = form[0]
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"named tag must be a non-empty string, got {json.dumps(form)}")
        alias = ALIASES.get(name)
        keyword = tag_for_keyword(name)
        return TagRef(name=name, alias=alias, tag=keyword)
    try:
        group, element = _int(form[0]), _int(form[1])
        index = _int(form[2]) if len(form) == 3 else None
    except ValueError:
        raise ValueError(
            f'tag {json.dumps(form)} is not [group, element(, index)] as numbers such as "0x0008"'
        ) from None
    if not (0 <= group <= 0xFFFF and 0 <= element <= 0xFFFF) or (index is not None and index < 0):
        raise ValueError(f"tag {json.dumps(form)} is out of range")
    return TagRef(tag=(group << 16) | element, index=index)


def _value_ref(value: Any) -> TagRef | None:
    """A ``value`` that is itself a tag (relative comparison): a list of 1-3 strings."""
    if isinstance(value, list) and 1 <= len(value) <= 3 and all(isinstance(v, str) for v in value):
        try:
            return parse_tag(value)
        except ValueError:
            return None
    return None


def _floats(value: Any) -> list[float] | None:
    """A number or a sequence of numbers (MultiValue included) as floats; None otherwise."""
    items = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    out: list[float] = []
    for item in items:
        if isinstance(item, bool) or item is None:
            return None
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            return None
    return out or None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else str(value)


class _Lookup:
    """Tag values for one image: the series record first, then the dataset (cached)."""

    __slots__ = ("ds", "record", "types", "_cache")

    def __init__(self, ds: Dataset, record: Mapping[str, Any]) -> None:
        self.ds, self.record = ds, record
        self.types: list[str] = []
        self._cache: dict[tuple[int, int | None], Any] = {}

    def get(self, ref: TagRef) -> Any:
        """The value, or _MISSING."""
        if ref.name is not None:
            if ref.name == "ClassifyType":
                return self.types
            if ref.name in self.record:
                return self.record[ref.name]
            if ref.alias is not None and ref.alias in self.record:
                return self.record[ref.alias]
            if ref.tag is None:
                return _MISSING
        key = (ref.tag, ref.index)
        value = self._cache.get(key, self)
        if value is self:
            value = self._cache[key] = self._element(ref)
        return value

    def _element(self, ref: TagRef) -> Any:
        try:
            value = element_value(self.ds, ref.tag)
        except KeyError:
            return _MISSING
        except Exception as exc:  # a malformed element reads as missing, not as a crash
            log.debug("cannot read %08X: %s", ref.tag, type(exc).__name__)  # text may quote it
            return _MISSING
        if value is None:
            value = ""
        if ref.index is None:
            return value
        if isinstance(value, list | tuple | MultiValue):
            return value[ref.index] if ref.index < len(value) else _MISSING
        return value if ref.index == 0 else _MISSING


@dataclass(slots=True)
class _Entry:
    tag: TagRef
    op: str
    negate: bool
    value: Any
    ref: TagRef | None
    regex: re.Pattern[str] | None
    number: float | None
    level: float

    def test(self, look: _Lookup) -> bool:
        v = look.get(self.tag)
        present = v is not _MISSING
        if not present:
            v = ""
        v2 = self.value
        static = True
        if self.ref is not None:
            got = look.get(self.ref)
            if got is not _MISSING:  # FIONA: an absent value-tag falls back to the literal
                v2, static = got, False
        op = self.op
        if op == "regexp":
            pattern = self.regex if static else _compile(_text(v2))
            result = pattern is not None and pattern.search(_text(v)) is not None
        elif op in _NUMERIC:
            try:
                a = float(v)
                b = self.number if static else float(v2)
                if b is None:
                    raise ValueError
            except (TypeError, ValueError):
                return True  # FIONA swallows the conversion error: the entry passes
            result = (
                a == b if op == "==" else a != b if op == "!=" else a < b if op == "<" else a > b
            )
        elif op == "contains":
            result = _contains(v, v2)
        elif op == "approx":
            a_list, b_list = _floats(v) if present else None, _floats(v2)
            result = (
                a_list is not None
                and b_list is not None
                and len(a_list) == len(b_list)
                and all(abs(x - y) <= self.level for x, y in zip(a_list, b_list, strict=True))
            )
        elif op == "exist":
            result = present
        elif op == "notexist":
            result = not present
        else:
            return False  # unknown operator: FIONA fails the entry whatever the negation
        return result != self.negate


def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _contains(v: Any, needle: Any) -> bool:
    if isinstance(v, str):
        return _text(needle) in v
    if isinstance(v, list | tuple | MultiValue):
        if needle in v:
            return True
        text = _text(needle)
        return any(_text(x) == text for x in v)
    return _text(needle) in _text(v)


@dataclass(slots=True)
class _Rule:
    type: str
    index: int
    entries: list[_Entry]
    uses_types: bool

    def passes(self, look: _Lookup) -> bool:
        for entry in self.entries:
            if not entry.test(look):
                return False
        return True


def _label(index: int, rule: Any) -> str:
    if isinstance(rule, dict):
        name = rule.get("id") or rule.get("type")
        if isinstance(name, str):
            return f"rule {index} ({name})"
    return f"rule {index}"


class RuleSet:
    """Compiled classification rules. Build with :meth:`load` or :meth:`from_list`."""

    def __init__(self, rules: list[_Rule], resolved: list[dict[str, Any]], source: str) -> None:
        self._rules = rules
        self._resolved = resolved
        self.source = source
        self.uses_types = any(r.uses_types for r in rules)
        self.series_level = frozenset(
            d["type"] for d in resolved if d.get("check") == "SeriesLevel"
        )

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"RuleSet({self.source!r}, {len(self)} rules)"

    @classmethod
    def load(cls, path: Path | str) -> RuleSet:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RulesError(f"{path}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesError(f"{path}: cannot read: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RulesError(
                f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        return cls.from_list(data, source=str(path))

    @classmethod
    def from_list(cls, data: Any, source: str = "<rules>") -> RuleSet:
        resolved = _resolve(data, source)
        rules = [_compile_rule(i, r, source) for i, r in enumerate(resolved)]
        return cls(rules, resolved, source)

    def resolved(self) -> list[dict[str, Any]]:
        """The rules after rule/notrule inlining, as JSON-ready dicts (a copy)."""
        return copy.deepcopy(self._resolved)

    def classify(
        self,
        ds: Dataset,
        record: Mapping[str, Any],
        *,
        types: Iterable[str] = (),
        failed: Iterable[str] = (),
    ) -> Classification:
        """Classify one image. ``record`` answers named tags; ``types``/``failed`` are the
        series' ClassifyType and failed SeriesLevel types so far."""
        failed = list(failed)
        failed_set = set(failed)
        current = [t for t in dict.fromkeys(types) if t not in failed_set]
        look = _Lookup(ds, record)
        look.types = current  # grows as rules pass: ClassifyType rules see it live
        passed: set[str] = set()
        for _ in range(_CLASSIFY_PASSES):
            added = False
            for rule in self._rules:
                if rule.type in passed or rule.type in failed_set:
                    continue  # ORed: one pass is enough; a failed SeriesLevel type stays out
                if rule.passes(look):
                    passed.add(rule.type)
                    if rule.type not in current:
                        current.append(rule.type)
                        added = True
            if not (added and self.uses_types):
                break
        newly_failed = [t for t in self.series_level if t not in passed and t not in failed_set]
        if newly_failed:
            failed_set.update(newly_failed)
            current = [t for t in current if t not in failed_set]
        order = list(dict.fromkeys([*failed, *sorted(newly_failed)]))
        return Classification(current, order)


# --- loading --------------------------------------------------------------------------


def _resolve(data: Any, source: str) -> list[dict[str, Any]]:
    """Validate the structure and inline every rule/notrule reference."""
    if not isinstance(data, list):
        raise RulesError(
            f"{source}: the file must hold a JSON array of rules, got {type(data).__name__}"
        )
    by_id: dict[str, list[int]] = {}
    for i, rule in enumerate(data):
        where = f"{source}: {_label(i, rule)}"
        if not isinstance(rule, dict):
            raise RulesError(f"{where}: a rule must be an object, got {json.dumps(rule)}")
        if not isinstance(rule.get("type"), str) or not rule["type"]:
            raise RulesError(f'{where}: "type" must be a non-empty string')
        if not isinstance(rule.get("rules"), list):
            raise RulesError(f'{where}: "rules" must be a list of entries')
        if "id" in rule:
            if not isinstance(rule["id"], str):
                raise RulesError(f'{where}: "id" must be a string')
            by_id.setdefault(rule["id"], []).append(i)
        if "check" in rule and rule["check"] != "SeriesLevel":
            log.warning(
                '%s: unknown check %r ignored (only "SeriesLevel" is known)', where, rule["check"]
            )
        for j, entry in enumerate(rule["rules"]):
            if not isinstance(entry, dict):
                raise RulesError(f"{where}: entry {j} must be an object, got {json.dumps(entry)}")
            refs = [k for k in ("rule", "notrule") if k in entry]
            if len(refs) > 1 or (refs and "tag" in entry):
                raise RulesError(f"{where}: entry {j} must have only one of tag, rule, notrule")
            if refs and not isinstance(entry[refs[0]], str):
                raise RulesError(f"{where}: entry {j}: {refs[0]} must be a rule id (a string)")
            if not refs and "tag" not in entry:
                raise RulesError(f'{where}: entry {j} has neither "tag" nor "rule"/"notrule"')

    done: dict[int, list[dict[str, Any]]] = {}

    def entries_of(i: int, chain: tuple[int, ...]) -> list[dict[str, Any]]:
        if i in done:
            return done[i]
        if len(chain) > MAX_PASSES:
            raise RulesError(
                f"{source}: {_label(i, data[i])}: references nested deeper than {MAX_PASSES} levels"
            )
        out: list[dict[str, Any]] = []
        for j, entry in enumerate(data[i]["rules"]):
            kind = "rule" if "rule" in entry else "notrule" if "notrule" in entry else None
            if kind is None:
                out.append(copy.deepcopy(entry))
                continue
            target = entry[kind]
            where = f"{source}: {_label(i, data[i])}: entry {j}"
            hits = by_id.get(target, [])
            if not hits:
                raise RulesError(f'{where}: {kind} "{target}" refers to no rule with that id')
            if len(hits) > 1:
                raise RulesError(
                    f'{where}: {kind} "{target}" is ambiguous: rules '
                    f"{', '.join(map(str, hits))} have that id"
                )
            k = hits[0]
            if k in chain or k == i:
                names = " -> ".join(str(data[c].get("id") or c) for c in (*chain, i, k))
                raise RulesError(
                    f"{where}: reference cycle {names} (never resolves within {MAX_PASSES} passes)"
                )
            for sub in entries_of(k, (*chain, i)):
                sub = copy.deepcopy(sub)
                if kind == "notrule":
                    if sub.get("negate") == "yes":
                        del sub["negate"]
                    else:
                        sub["negate"] = "yes"
                out.append(sub)
        done[i] = out
        return out

    resolved = []
    for i, rule in enumerate(data):
        item = {k: copy.deepcopy(v) for k, v in rule.items() if k != "rules"}
        item["rules"] = entries_of(i, ())
        resolved.append(item)
    return resolved


def _compile_rule(index: int, rule: dict[str, Any], source: str) -> _Rule:
    entries = [_compile_entry(rule, index, j, e, source) for j, e in enumerate(rule["rules"])]
    uses = any(
        e.tag.name == "ClassifyType" or (e.ref is not None and e.ref.name == "ClassifyType")
        for e in entries
    )
    return _Rule(rule["type"], index, entries, uses)


def _compile_entry(
    rule: dict[str, Any], index: int, j: int, entry: dict[str, Any], source: str
) -> _Entry:
    where = f"{source}: {_label(index, rule)}: entry {j}"
    try:
        tag = parse_tag(entry["tag"])
    except ValueError as exc:
        raise RulesError(f"{where}: {exc}") from None
    op = entry.get("operator", "regexp")
    if not isinstance(op, str):
        raise RulesError(f"{where}: operator must be a string, got {json.dumps(op)}")
    op = _OP_ALIASES.get(op, op)
    if op not in _OPERATORS:
        log.warning("%s: unknown operator %r: this entry always fails (as in FIONA)", where, op)
    negate = entry.get("negate") in ("yes", True)
    if "value" not in entry and op not in ("exist", "notexist"):
        if op in _OPERATORS:
            raise RulesError(f'{where}: operator {op!r} needs a "value"')
    value = entry.get("value", "")
    ref = _value_ref(value)
    regex = None
    number = None
    if op == "regexp":
        if isinstance(value, dict) or (isinstance(value, list) and ref is None):
            raise RulesError(f"{where}: a regexp value must be a string, got {json.dumps(value)}")
        if ref is None:
            try:
                regex = re.compile(_text(value) if not isinstance(value, bool) else str(value))
            except re.error as exc:
                raise RulesError(
                    f"{where}: bad regular expression {json.dumps(value)}: {exc}"
                ) from None
    elif op in _NUMERIC and ref is None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            log.warning(
                "%s: value %s is not a number: the entry always passes (as in FIONA)",
                where,
                json.dumps(value),
            )
    elif op == "approx" and ref is None and _floats(value) is None:
        raise RulesError(
            f"{where}: approx needs a number or a list of numbers, got {json.dumps(value)}"
        )
    try:
        level = float(entry.get("approxLevel", 1e-4))
        if math.isnan(level) or level < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise RulesError(
            f"{where}: approxLevel must be a non-negative number, "
            f"got {json.dumps(entry.get('approxLevel'))}"
        ) from None
    return _Entry(tag, op, negate, value, ref, regex, number, level)
