"""update_formula: R's update.formula, checked against R's own output
(tests/reference/lme4_update.R), and its errors."""

from __future__ import annotations

import pytest

import lmerpy as lp
from lmerpy.formula.update import update_formula
from tests.conftest import read_reference

CASES = read_reference("lme4_update.json")["formulas"]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['old']} | {c['new']}" for c in CASES])
def test_update_writes_rs_formula(case):
    assert update_formula(lp.parse(case["old"]), case["new"]) == case["updated"]


def test_lmerpy_terms_take_part_as_r_terms():
    old = lp.parse("y ~ nn(x1 + ... + x10) + (1 | g)")
    assert update_formula(old, ". ~ . + rbf(lat, lon) + w") == \
        "y ~ nn(x1 + ... + x10) + (1 | g) + rbf(lat, lon) + w"
    assert update_formula(old, ". ~ . - nn(x1 + ... + x10) + nn(.)") == "y ~ (1 | g) + nn(.)"
    assert update_formula(lp.parse("y ~ . - z + (1 | g)"), ". ~ . + w") == \
        "y ~ . + (1 | g) + w - z"
    # an offset can be removed (R keeps it)
    assert update_formula(lp.parse("y ~ x + offset(o) + (1 | g)"), ". ~ . - offset(o)") == \
        "y ~ x + (1 | g)"


@pytest.mark.parametrize("old, new, message, column", [
    ("y ~ x + (1 | g)", ". ~ . - (1 | h)", "cannot remove (1 | h): the formula has no such",
     9),
    ("y ~ x", ". ~ .^2", "update() replaces a '.' that is a term of the new formula's sum", 5),
    ("y ~ x + (1 | g)", "log(.) ~ .", "on the left of '~' '.' stands for the whole response",
     5),
    ("y ~ x + (1 | g)", ". ~ . + x:", "formula ends too early", 11),
])
def test_update_errors_point_into_the_new_formula(old, new, message, column):
    with pytest.raises(lp.FormulaError) as err:
        update_formula(lp.parse(old), new)
    assert message in err.value.message and err.value.column == column
