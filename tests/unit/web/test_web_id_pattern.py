"""Participant-ID patterns for people: an example that matches, and the rule in words."""

from __future__ import annotations

import re

import pytest

from fionagw.web.id_pattern import example_id, participant_hint, rule_in_words


@pytest.mark.parametrize(
    ("pattern", "example", "words"),
    [
        ("^DEMO[0-9]{3}$", "DEMO000", '"DEMO" then 3 digits'),
        ("^[A-Z]{2}-[0-9]{2,4}$", "AA-00", '2 capital letters then "-" then 2 to 4 digits'),
        ("^P[0-9]+$", "P0", '"P" then 1 or more digits'),
        ("^S[a-z]*X?$", "SaX", '"S" then any number of small letters then optionally one "X"'),
        ("^(AB|CD)[0-9]$", "AB0", None),
        ("MMIV_[0-9]{4}", "MMIV_0000", '"MMIV_" then 4 digits'),
    ],
)
def test_examples_match_and_rules_read(pattern: str, example: str, words: str | None) -> None:
    assert example_id(pattern) == example
    assert re.fullmatch(pattern, example)
    if words is not None:
        assert rule_in_words(pattern) == words


@pytest.mark.parametrize("pattern", [r"^\d{3}$", "^.*$", "^(?=A)A$", "[", "^[^A]$"])
def test_no_example_outside_the_subset(pattern: str) -> None:
    assert example_id(pattern) is None
    assert rule_in_words(pattern) == f"matching the pattern {pattern}"
    assert participant_hint(pattern) == f"matching the pattern {pattern}"


def test_hint_has_words_and_example() -> None:
    assert participant_hint("^DEMO[0-9]{3}$") == '"DEMO" then 3 digits, e.g. DEMO000'
