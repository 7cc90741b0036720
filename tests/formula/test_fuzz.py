"""Fuzzing: arbitrary text and token soup never raise anything but FormulaError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lmerpy as lp
from tests.conftest import corpus

TOKENS = ["y", "x", "x1", "x10", "g", "a", "b", "~", "+", "-", "*", "/", ":", "^", "**", "|",
          "||", "(", ")", "[", "]", ",", "=", "0", "1", "2.5", ".", "...", "I", "log", "nn",
          "rbf", "poly", "C", "offset", "cbind", "hidden", '"relu"', "TRUE", "`a b`", "<",
          "==", " ", "__class__", "foo", "scale"]


def _parse_or_formula_error(text: str) -> None:
    try:
        formula = lp.parse(text)
    except lp.FormulaError as err:
        assert err.message
        if err.column is not None:
            assert 1 <= err.column <= len(text) + 1
        return
    # whatever parses has a canonical form that parses to the same formula
    assert lp.parse(str(formula)) == formula


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_arbitrary_text(text):
    _parse_or_formula_error(text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_token_sequences(tokens):
    _parse_or_formula_error(" ".join(tokens))


VALID = [row[0] for row in corpus("valid.tsv")]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.integers(0, 200), st.sampled_from(TOKENS + ["", "(", ")"]))
def test_mutated_corpus(text, at, token):
    i = at % (len(text) + 1)
    _parse_or_formula_error(text[:i] + token + text[i + 1:])
