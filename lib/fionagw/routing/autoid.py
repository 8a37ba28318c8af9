"""AutoID: a new random participant ID that matches the project's participant-ID regex.

FIONA calls gen-id with the project's `project_patient_naming` regex and a list of IDs
already used. We walk the regex's parse tree (Python's own regex parser) and draw a
random string from it, so any pattern a project can validate with can also generate:
literals, classes, \\d \\w, alternation, groups and bounded or unbounded repeats.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from re import _constants as C  # noqa: N812 - the parser's opcode names
from re import _parser as sre_parse

_ALPHABET = string.ascii_letters + string.digits
_CATEGORY = {
    C.CATEGORY_DIGIT: string.digits,
    C.CATEGORY_WORD: _ALPHABET + "_",
    C.CATEGORY_SPACE: " ",
    C.CATEGORY_NOT_DIGIT: string.ascii_letters,
    C.CATEGORY_NOT_WORD: "-",
    C.CATEGORY_NOT_SPACE: _ALPHABET,
}
UNBOUNDED_EXTRA = 3  # how far past the minimum an open repeat (*, +, {n,}) may go


class AutoIDError(Exception):
    pass


def autoid_key(patient_id_hash: str) -> str:
    """FIONA's AutoID key: sha512 of the (already SHA-256 hex) incoming patient ID."""
    return hashlib.sha512(patient_id_hash.encode()).hexdigest()


def _choice_set(items: list) -> str:
    chars: list[str] = []
    negate = False
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            chars.append(chr(av))
        elif op is C.RANGE:
            chars.extend(chr(c) for c in range(av[0], av[1] + 1))
        elif op is C.CATEGORY:
            chars.extend(_CATEGORY.get(av, ""))
    if negate:
        excluded = set(chars)
        return "".join(c for c in _ALPHABET if c not in excluded)
    return "".join(chars)


def _draw(tree: sre_parse.SubPattern, groups: dict[int, str]) -> str:
    out: list[str] = []
    for op, av in tree:
        if op is C.LITERAL:
            out.append(chr(av))
        elif op is C.NOT_LITERAL:
            out.append(secrets.choice([c for c in _ALPHABET if ord(c) != av]))
        elif op is C.ANY:
            out.append(secrets.choice(_ALPHABET))
        elif op is C.IN:
            pool = _choice_set(av)
            if not pool:
                raise AutoIDError("a character class that admits no letter or digit")
            out.append(secrets.choice(pool))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
            low, high, sub = av
            if high is C.MAXREPEAT:
                high = low + UNBOUNDED_EXTRA
            for _ in range(low + secrets.randbelow(high - low + 1)):
                out.append(_draw(sub, groups))
        elif op is C.SUBPATTERN:
            group, _add, _del, sub = av
            text = _draw(sub, groups)
            if group:
                groups[group] = text
            out.append(text)
        elif op is C.BRANCH:
            out.append(_draw(secrets.choice(av[1]), groups))
        elif op is C.GROUPREF:
            out.append(groups.get(av, ""))
        elif op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue  # anchors and look-arounds: checked by the final match
        else:
            raise AutoIDError(f"unsupported regex element {op}")
    return "".join(out)


def generate_id(pattern: str, taken: set[str], attempts: int = 1000) -> str:
    """A random ID that re.match-es ``pattern`` (anchored at the end too) and is not taken."""
    try:
        tree = sre_parse.parse(pattern)
        compiled = re.compile(pattern)
    except re.error as exc:
        raise AutoIDError(
            f"participant-ID pattern {pattern!r} is not a valid regex: {exc}"
        ) from None
    for _ in range(attempts):
        candidate = _draw(tree, {})
        if candidate and compiled.fullmatch(candidate) and candidate not in taken:
            return candidate
    raise AutoIDError(
        f"no unused ID matching {pattern!r} after {attempts} tries "
        f"({len(taken)} IDs in use: is the pattern's space exhausted?)"
    )
