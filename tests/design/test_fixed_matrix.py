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


# --- contrasts= (R's lmer(..., contrasts = list(A = "contr.sum"))) -------------------------

CONTRASTS_REF = read_reference("lme4_contrasts.json")
FAC = pd.DataFrame(CONTRASTS_REF["data"]).assign(g=lambda d: d.g.astype(str))
SUM_HELMERT = {"A": "contr.sum", "B": "contr.helmert"}


def test_contrasts_give_rs_columns_estimates_and_type_iii_tests():
    ref = CONTRASTS_REF["sum_helmert"]
    m = lp.lmer("y ~ A * x + B + (1 | g)", FAC, contrasts=SUM_HELMERT)
    assert list(m.fixef().index) == ref["fixef_names"]
    np.testing.assert_allclose(m.fixef().to_numpy(), ref["fixef"], rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(m.vcov().to_numpy())), ref["se"], rtol=1e-5)
    a3 = lp.Anova(m, type="III").table
    assert list(a3.index) == ref["anova3"]["terms"]
    np.testing.assert_allclose(a3["Chisq"], ref["anova3"]["chisq"], rtol=1e-5)
    # the REML likelihood depends on X's coding (through log|R_X|), as lme4's does; the ML
    # one does not
    treatment = lp.lmer("y ~ A * x + B + (1 | g)", FAC)
    assert float(m.logLik()) == pytest.approx(ref["logLik"], abs=1e-6)
    assert float(treatment.logLik()) == pytest.approx(CONTRASTS_REF["treatment"]["logLik"],
                                                      abs=1e-6)
    assert float(lp.update(m, REML=False).logLik()) == pytest.approx(
        float(lp.update(treatment, REML=False).logLik()), abs=1e-6)
    np.testing.assert_allclose(lp.Anova(treatment, type="III").table["Chisq"],
                               CONTRASTS_REF["treatment"]["anova3"]["chisq"], rtol=1e-5)


def test_contrasts_reach_predictions_updates_and_saved_models(tmp_path):
    ref = CONTRASTS_REF["sum_helmert"]
    m = lp.lmer("y ~ A * x + B + (1 | g)", FAC, contrasts={"A": "sum", "B": "helmert"})
    new = pd.DataFrame(CONTRASTS_REF["newdata"])
    np.testing.assert_allclose(m.predict(new, allow_new_levels=True), ref["predict"],
                               rtol=1e-6)
    refitted = lp.update(m, REML=False)
    assert list(refitted.fixef().index) == ref["fixef_names"]
    m.save(tmp_path / "m.lmerpy")
    loaded = lp.load(tmp_path / "m.lmerpy")
    assert list(loaded.fixef().index) == ref["fixef_names"]
    np.testing.assert_allclose(loaded.predict(new, allow_new_levels=True), ref["predict"],
                               rtol=1e-6)
    with pytest.warns(UserWarning, match="contrasts for 'B' ignored: no such factor"):
        lp.update(m, ". ~ . - B")


def test_glmer_contrasts():
    ref = CONTRASTS_REF["cbpp_sum"]
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 lp.datasets.load("cbpp"), family="binomial",
                 contrasts={"period": "contr.sum"})
    assert list(g.fixef().index) == ref["fixef_names"]
    np.testing.assert_allclose(g.fixef().to_numpy(), ref["fixef"], rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("contrasts, message", [
    ({"A": "contr.wrong"}, r"'contr.wrong' for 'A' is not a coding"),
    ({"x": "contr.sum"}, r"'x' is numeric, and contrasts apply only to factors"),
    (["A"], "contrasts must be a dict"),
])
def test_bad_contrasts_are_named(contrasts, message):
    with pytest.raises(lp.ModelError, match=message):
        lp.lmer("y ~ A * x + B + (1 | g)", FAC, contrasts=contrasts)
