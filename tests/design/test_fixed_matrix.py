"""The fixed-effects matrix X: equal to R's model.matrix (names and numbers) and to patsy's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

import lmerpy as lp
from tests.conftest import read_reference

REF = read_reference("lme4_structures.json")


def _r_data() -> pd.DataFrame:
    df = pd.DataFrame(REF["model_matrix_data"])
    df["f"] = pd.Categorical(df["f"], categories=REF["model_matrix_levels"]["f"])
    df["b"] = df["b"].astype(bool)
    df["y"] = np.arange(len(df), dtype=float)
    return df


@pytest.mark.parametrize("case", REF["model_matrices"], ids=[c["formula"] for c in
                                                               REF["model_matrices"]])
def test_X_matches_R_model_matrix(case):
    d = lp.design("y " + case["formula"], _r_data())
    names = case["colnames"] if isinstance(case["colnames"], list) else [case["colnames"]]
    assert d.X_names == names
    expected = np.asarray(case["values"], dtype=float).reshape(len(d.y), -1)
    np.testing.assert_allclose(d.X, expected, rtol=1e-10, atol=1e-12)


# (lmerpy formula, the same model in patsy's syntax). Only models where patsy and R agree:
# for an interaction without its margins (y ~ f:g) R keeps all indicator columns and patsy
# does not; lmerpy follows R (checked above), lme4 then drops the aliased column.
PATSY = [
    ("y ~ x + f", "x + f"),
    ("y ~ x * f", "x * f"),
    ("y ~ 0 + f", "0 + f"),
    ("y ~ x:f", "x:f"),
    ("y ~ f * g", "f * g"),
    ("y ~ I(x^2) + log(x + 1)", "I(x**2) + np.log(x + 1)"),
    ("y ~ (x + z + f)^2", "(x + z + f)**2"),
    ("y ~ x/f", "x/f"),
    ("y ~ C(f, sum)", "C(f, Sum)"),
    ("y ~ b + x", "b + x"),
    ("y ~ f + g + f:g + x:g", "f + g + f:g + x:g"),
    ("y ~ x - 1", "x - 1"),
    ("y ~ g/x", "g/x"),
]


@pytest.mark.parametrize("ours,theirs", PATSY, ids=[p[0] for p in PATSY])
def test_X_matches_patsy(ours, theirs):
    data = _r_data()
    d = lp.design(ours, data)
    expected = np.asarray(patsy.dmatrix(theirs, data, return_type="dataframe"))
    assert d.X.shape == expected.shape
    # patsy orders columns its own way (factors first); every column must match one of its
    unmatched = list(range(expected.shape[1]))
    for j in range(d.X.shape[1]):
        hit = next(k for k in unmatched if np.allclose(d.X[:, j], expected[:, k], atol=1e-12))
        unmatched.remove(hit)
    assert not unmatched


def test_new_data_reuses_training_encoding():
    data = _r_data()
    d = lp.design("y ~ poly(x, 2) + scale(z) + f", data)
    again = d.for_new_data(data.iloc[[5, 0, 7]])
    np.testing.assert_allclose(again.X, d.X[[5, 0, 7]], rtol=1e-10)
    # one level only in the new rows: still the training contrasts (3 levels -> 2 columns)
    only_hi = data[data.f == "hi"]
    assert d.for_new_data(only_hi).X.shape[1] == d.X.shape[1]


def test_unseen_fixed_level_is_named():
    data = _r_data()
    d = lp.design("y ~ x + g", data)
    new = data.iloc[:2].copy()
    new["g"] = ["a", "zzz"]
    with pytest.raises(lp.DataError, match="'g' has level\\(s\\) not seen.*zzz"):
        d.for_new_data(new)


def test_numeric_level_names_like_R():
    data = pd.DataFrame({"y": np.arange(6.0), "cyl": [4, 6, 8, 4, 6, 8]})
    d = lp.design("y ~ factor(cyl)", data)
    assert d.X_names == ["(Intercept)", "factor(cyl)6", "factor(cyl)8"]
    data["cyl"] = [10, 9, 8, 10, 9, 8]  # numeric, so sorted numerically: 8, 9, 10
    assert lp.design("y ~ factor(cyl)", data).X_names == [
        "(Intercept)", "factor(cyl)9", "factor(cyl)10"]


def test_text_levels_sorted_and_categorical_order_kept():
    data = pd.DataFrame({"y": np.arange(6.0), "s": list("cabcab")})
    assert lp.design("y ~ s", data).X_names == ["(Intercept)", "sb", "sc"]
    data["s"] = pd.Categorical(data["s"], categories=["c", "b", "a"])
    assert lp.design("y ~ s", data).X_names == ["(Intercept)", "sb", "sa"]
