"""The grammar corpus: every valid formula expands as written, every invalid one fails where
it says. The valid expansions were written by hand and the fixed/random parts of those R can
read were checked against R's terms() and lme4's findbars() (tests/reference)."""

from __future__ import annotations

import pytest

import lmerpy as lp
from tests.conftest import corpus, read_reference

VALID = corpus("valid.tsv")
INVALID = corpus("invalid.tsv")


def test_corpus_is_large_enough():
    assert len(VALID) >= 100
    assert len(INVALID) >= 50


@pytest.mark.parametrize("text,canonical", VALID, ids=[v[0] for v in VALID])
def test_valid_formula_expands(text, canonical):
    formula = lp.parse(text)
    assert str(formula) == canonical
    # re-parses to an equal formula (a:b == b:a, as in R; printing order may differ)
    assert lp.parse(str(formula)) == formula


@pytest.mark.parametrize("text,column,message", INVALID, ids=[v[0] for v in INVALID])
def test_invalid_formula_fails_at_column(text, column, message):
    with pytest.raises(lp.FormulaError) as info:
        lp.parse(text)
    err = info.value
    assert err.column == int(column)
    assert message in err.message
    # the rendered message has the column and a caret under it
    rendered = str(err).splitlines()
    assert f"at column {column}" in rendered[0]
    assert rendered[2].index("^") - 2 == int(column) - 1


def test_corpus_agrees_with_r():
    r_terms = read_reference("r_formula_terms.json")
    expected = {text: canonical for text, canonical in VALID}
    assert len(r_terms) >= 100
    for text, r_canonical in r_terms.items():
        assert expected[text] == r_canonical, text
