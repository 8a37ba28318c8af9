"""The subset of REDCap's logic syntax the double evaluates for ``filterLogic``.

Supported: ``[field]`` and ``[checkbox(code)]`` references, string ("..", '..') and number
literals, the comparisons ``= <> != < > <= >=``, ``and``/``or`` (case-insensitive) and
parentheses. Values compare as numbers when both sides are numbers, else as text; an empty
value never satisfies ``< > <= >=``. Anything else (functions, smart variables,
``[event][field]``, arithmetic) is refused with a 400 instead of silently matching everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Project

Predicate = Callable[[dict[str, Any], tuple], bool]

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<ref>\[[^\]]*\](?:\[[^\]]*\])*)
    | (?P<str>"(?:[^"])*"|'(?:[^'])*')
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<op><>|!=|<=|>=|=|<|>)
    | (?P<paren>[()])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<other>\S)
    )""",
    re.X,
)


def _fail(logic: str, why: str) -> Exception:
    from .model import ApiError

    return ApiError(400, f"The filterLogic cannot be used by the REDCap double ({why}): {logic}")


def compile_logic(logic: str, project: Project) -> Predicate:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = logic.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        kind = m.lastgroup or "other"
        value = m.group(kind)
        if kind == "other":
            raise _fail(logic, f"unsupported character {value!r}")
        if kind == "word":
            if value.lower() not in ("and", "or"):
                raise _fail(logic, f"unsupported word or function {value!r}")
            kind, value = "bool", value.lower()
        tokens.append((kind, value))
        pos = m.end()
    columns = project.columns()
    i = 0

    def peek() -> tuple[str, str] | None:
        return tokens[i] if i < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal i
        if i >= len(tokens):
            raise _fail(logic, "unexpected end")
        i += 1
        return tokens[i - 1]

    def operand() -> Callable[[dict[str, Any]], str]:
        kind, value = take()
        if kind == "str":
            lit = value[1:-1]
            return lambda row: lit
        if kind == "num":
            return lambda row: value
        if kind == "ref":
            m = re.fullmatch(r"\[([a-z0-9_]+)(?:\(([^)]*)\))?\]", value)
            if not m:
                raise _fail(logic, f"unsupported reference {value}")
            name, code = m.group(1), m.group(2)
            f = project.field(name)
            if code is not None:
                if f is None or f.type != "checkbox" or code not in dict(f.choices):
                    raise _fail(logic, f"{value} is not a checkbox choice")
                col = f"{name}___{f.code_suffix(code)}"
            elif name in columns or name == project.id_field:
                if f is not None and f.type == "checkbox":
                    raise _fail(logic, f"checkbox {value} needs a choice code, e.g. [{name}(1)]")
                col = name
            else:
                raise _fail(logic, f"unknown field {value}")
            return lambda row: str(row.get(col, ""))
        raise _fail(logic, f"expected a field or a value, got {value!r}")

    def comparison() -> Predicate:
        tok = peek()
        if tok == ("paren", "("):
            take()
            inner = disjunction()
            if take() != ("paren", ")"):
                raise _fail(logic, "missing )")
            return inner
        left = operand()
        kind, op = take()
        if kind != "op":
            raise _fail(logic, f"expected a comparison operator, got {op!r}")
        right = operand()
        return lambda row, key: _compare(left(row), op, right(row))

    def conjunction() -> Predicate:
        parts = [comparison()]
        while peek() == ("bool", "and"):
            take()
            parts.append(comparison())
        return parts[0] if len(parts) == 1 else (lambda row, key: all(p(row, key) for p in parts))

    def disjunction() -> Predicate:
        parts = [conjunction()]
        while peek() == ("bool", "or"):
            take()
            parts.append(conjunction())
        return parts[0] if len(parts) == 1 else (lambda row, key: any(p(row, key) for p in parts))

    if not tokens:
        raise _fail(logic, "empty")
    result = disjunction()
    if i != len(tokens):
        raise _fail(logic, f"unexpected {tokens[i][1]!r}")
    return result


def _number(text: str) -> float | None:
    try:
        return float(text) if text.strip() else None
    except ValueError:
        return None


def _compare(a: str, op: str, b: str) -> bool:
    na, nb = _number(a), _number(b)
    x: Any
    y: Any
    if na is not None and nb is not None:
        x, y = na, nb
    else:
        x, y = a, b
    if op == "=":
        return x == y
    if op in ("<>", "!="):
        return x != y
    if a == "" or b == "":
        return False
    return {"<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]
