"""ls_means(m): lmerTest's least-squares means and their pairwise differences, against
lmerTest's numbers and printed tables (tests/reference/lmertest.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from tests.conftest import read_reference

REF = read_reference("lmertest.json")
DATA = pd.DataFrame(REF["anova_data"])
LSM = REF["ls_means"]
COLUMNS = ["Estimate", "Std. Error", "df", "t value", "lower", "upper", "Pr(>|t|)"]


def _check(table, ref, rows=None):
    rows = rows or len(ref["rows"])
    assert list(table.index) == ref["rows"][:rows]
    for column in COLUMNS:
        np.testing.assert_allclose(table[column].to_numpy(dtype=float),
                                   np.array(ref[column][:rows], dtype=float), rtol=1e-5,
                                   err_msg=column)


@pytest.mark.parametrize("key, options", [("all", {}), ("kr", {"ddf": "Kenward-Roger"})])
def test_ls_means_are_lmertests(key, options):
    """Every factor term's means on the reference grid (x at its mean); printed as lmerTest
    but for the eighth decimal of some intervals, where the two fits' θ̂ differ."""
    m = lp.lmer("y ~ A * B + x + (1 | g)", DATA)
    got = lp.ls_means(m, **options)
    _check(got.table, LSM[key])
    ours, theirs = str(got).splitlines(), LSM[key]["lines"]
    assert len(ours) == len(theirs) and ours[:3] == theirs[:3] and ours[-5:] == theirs[-5:]


def test_pairwise_differences_are_lmertests_line_for_line():
    m = lp.lmer("y ~ A * B + x + (1 | g)", DATA)
    got = lp.ls_means(m, which=["A"], pairwise=True)
    _check(got.table, LSM["pairwise_A"])
    assert str(got).splitlines() == LSM["pairwise_A"]["lines"]


def test_a_transformed_covariate_is_computed_from_its_mean():
    """I(x^2) at (mean x)², as R's model.matrix on the grid makes it; lmerTest also lists
    I(x^2) as if it were a factor term (its last row), which lmerpy does not."""
    m = lp.lmer("y ~ A * x + I(x^2) + (1 | g)", DATA)
    got = lp.ls_means(m)
    _check(got.table, LSM["transformed"], rows=3)
    assert list(got.table.index) == ["Aa1", "Aa2", "Aa3"]
    with pytest.raises(lp.ModelError, match="'x' is not a factor term of the model \\(A\\)"):
        lp.ls_means(m, which=["x"])
