"""A project's participant-ID pattern for people: an example ID and the rule in words.

Only the common regex subset is understood (literals, character classes, ``{n}``, ``{n,m}``,
``?``, ``+``, ``*``, groups, alternatives, anchors); for anything else there is no example and
the rule is the pattern itself. An example is only given when it matches the pattern.
"""

from __future__ import annotations

import re
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser as sre  # type: ignore[attr-defined]
from typing import Any

_CLASS_WORDS = {("0", "9"): "digit", ("A", "Z"): "capital letter", ("a", "z"): "small letter"}


class _Unsupported(Exception):
    pass


def _count(lo: int, hi: int) -> int:
    return lo if lo > 0 else min(1, hi)


def _first_of_class(items: list[tuple[Any, Any]]) -> str:
    op, av = items[0]
    if op is c.LITERAL:
        return chr(av)
    if op is c.RANGE:
        return chr(av[0])
    raise _Unsupported


def _gen(parsed: Any) -> str:
    out = []
    for op, av in parsed:
        if op is c.LITERAL:
            out.append(chr(av))
        elif op is c.IN:
            out.append(_first_of_class(list(av)))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            lo, hi, sub = av
            out.append(_gen(sub) * _count(lo, hi))
        elif op is c.SUBPATTERN:
            out.append(_gen(av[-1]))
        elif op is c.BRANCH:
            out.append(_gen(av[1][0]))
        elif op is c.AT:
            continue
        else:
            raise _Unsupported
    return "".join(out)


def example_id(pattern: str) -> str | None:
    """An ID that matches ``pattern`` (``^DEMO[0-9]{3}$`` -> ``DEMO000``), or None."""
    try:
        text = _gen(sre.parse(pattern))
    except (_Unsupported, re.error, ValueError, OverflowError):
        return None
    return text if text and re.fullmatch(pattern, text) else None


def _class_words(items: list[tuple[Any, Any]]) -> str:
    words = []
    for op, av in items:
        if op is c.RANGE:
            lo, hi = chr(av[0]), chr(av[1])
            words.append(_CLASS_WORDS.get((lo, hi)) or f"character {lo}-{hi}")
        elif op is c.LITERAL:
            words.append(f'"{chr(av)}"')
        else:
            raise _Unsupported
    return " or ".join(words)


def _words(parsed: Any) -> list[str]:
    parts: list[str] = []
    for op, av in parsed:
        if op is c.LITERAL:
            if parts and parts[-1].startswith('"'):
                parts[-1] = parts[-1][:-1] + chr(av) + '"'
            else:
                parts.append(f'"{chr(av)}"')
        elif op is c.IN:
            parts.append(f"one {_class_words(list(av))}")
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            lo, hi, sub = av
            inner = " then ".join(_words(sub)).removeprefix("one ")
            if lo == hi:
                times = str(lo)
            elif hi == c.MAXREPEAT:
                times = "any number of" if lo == 0 else f"{lo} or more"
            elif lo == 0 and hi == 1:
                times = "optionally one"
            else:
                times = f"{lo} to {hi}"
            parts.append(f"{times} {inner}{'s' if times not in ('1', 'optionally one') else ''}")
        elif op is c.SUBPATTERN:
            parts.extend(_words(av[-1]))
        elif op is c.AT:
            continue
        else:
            raise _Unsupported
    return parts


def rule_in_words(pattern: str) -> str:
    """``^DEMO[0-9]{3}$`` -> ``"DEMO" then 3 digits``; the pattern itself when not understood."""
    try:
        parts = _words(sre.parse(pattern))
    except (_Unsupported, re.error, ValueError, OverflowError):
        parts = []
    return " then ".join(parts) if parts else f"matching the pattern {pattern}"


def participant_hint(pattern: str) -> str:
    """The rule in words with an example, for the participant field and its error."""
    example = example_id(pattern)
    words = rule_in_words(pattern)
    return f"{words}, e.g. {example}" if example else words
