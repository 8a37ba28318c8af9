"""Typed values of the administration forms' text fields, one reading for every page."""

from __future__ import annotations


def whole_number(text: str) -> int:
    """``text`` as an int; ValueError naming the problem."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None


def number(text: str) -> int | float:
    """``text`` as a number (an int when it is whole); ValueError naming the problem."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    return int(value) if value.is_integer() else value
