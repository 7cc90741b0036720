"""design(): response, missing values, bad columns, new data, nn inputs and spatial terms."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from lmerpy.design import Diagonal, RBFKernel, Unstructured
from tests.conftest import read_reference


@pytest.fixture
def sleep():
    return lp.datasets.load("sleepstudy")


def test_sleepstudy_design(sleep):
    d = lp.design("Reaction ~ Days + (Days | Subject)", sleep)
    assert d.X_names == ["(Intercept)", "Days"]
    np.testing.assert_array_equal(d.y, sleep.Reaction.to_numpy())
    (r,) = d.random
    assert (r.group, r.q, r.p, r.names) == ("Subject", 18, 2, ["(Intercept)", "Days"])
    assert d.Z.shape == (180, 36)
    assert d.n_dropped == 0
    assert d.ngrps == {"Subject": 18}


def test_missing_values_are_dropped_and_counted(sleep):
    data = sleep.copy()
    data.loc[[0, 5], "Reaction"] = np.nan
    data.loc[7, "Days"] = np.nan
    data.loc[7, "Subject"] = np.nan
    with pytest.warns(UserWarning, match="3 row\\(s\\) dropped.*'Reaction': 2.*'Days': 1"):
        d = lp.design("Reaction ~ Days + (Days | Subject)", data)
    assert d.n_dropped == 3 and d.n == 177
    assert list(d.dropped_index) == [0, 5, 7]
    with pytest.raises(lp.DataError, match="3 row\\(s\\) have missing values"):
        lp.design("Reaction ~ Days + (Days | Subject)", data, na_action="raise")


def test_unused_column_with_na_drops_nothing(sleep):
    data = sleep.assign(other=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lp.design("Reaction ~ Days", data).n_dropped == 0


def test_missing_column_suggests_close_match(sleep):
    with pytest.raises(lp.DataError, match="column 'Dayz' not found in data; did you mean 'Days'"):
        lp.design("Reaction ~ Dayz", sleep)
    with pytest.raises(lp.DataError, match="column 'Subjekt' not found"):
        lp.design("Reaction ~ Days + (1 | Subjekt)", sleep)


@pytest.mark.parametrize("bad,match", [
    (pd.DataFrame(), "no rows"),
    ([1, 2, 3], "must be a pandas DataFrame"),
])
def test_bad_frames(bad, match):
    with pytest.raises(lp.DataError, match=match):
        lp.design("y ~ x", bad)


def test_duplicate_columns():
    data = pd.DataFrame([[1.0, 2.0, 3.0]], columns=["y", "x", "x"])
    with pytest.raises(lp.DataError, match="duplicate column names: x"):
        lp.design("y ~ x", data)


def test_text_column_in_arithmetic(sleep):
    with pytest.raises(lp.DataError, match="column 'Subject' holds categories"):
        lp.design("Reaction ~ I(Subject^2)", sleep)


def test_infinite_values_are_named(sleep):
    data = sleep.copy()
    data.loc[3, "Days"] = np.inf
    with pytest.raises(lp.DataError, match="column 'Days' holds infinite values.*rows \\[3\\]"):
        lp.design("Reaction ~ Days", data)


def test_domain_errors_are_named(sleep):
    with pytest.raises(lp.DataError, match="'log\\(Days\\)' is not finite"):
        lp.design("Reaction ~ log(Days)", sleep)


def test_response_forms():
    cbpp = lp.datasets.load("cbpp")
    d = lp.design("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    assert d.y.shape == (56, 2)
    np.testing.assert_array_equal(d.y[:, 1], cbpp["size"] - cbpp["incidence"])
    d = lp.design("log(size) ~ period", cbpp)
    np.testing.assert_allclose(d.y, np.log(cbpp["size"]))


def test_offset(sleep):
    d = lp.design("Reaction ~ Days + offset(2 * Days)", sleep)
    np.testing.assert_array_equal(d.offset, 2 * sleep.Days.to_numpy())
    assert d.X_names == ["(Intercept)", "Days"]


def test_dot_means_all_other_columns():
    data = pd.DataFrame({"y": np.arange(6.0), "a": np.arange(6.0) ** 2, "b": list("uvuvuv"),
                         "g": list("ppqqrr")})
    d = lp.design("y ~ . + (1 | g)", data)
    assert d.X_names == ["(Intercept)", "a", "bv"]
    d = lp.design("y ~ . - a", data)
    assert d.X_names == ["(Intercept)", "bv", "gq", "gr"]


def test_interaction_grouping_levels_like_R():
    data = pd.DataFrame({"y": np.arange(6.0), "a": list("xxyyzz"), "b": list("qpqpqq")})
    d = lp.design("y ~ (1 | a:b)", data)
    # R's a:b levels: a outermost, unused combinations dropped (z:p never occurs)
    assert d.random[0].levels == ["x:p", "x:q", "y:p", "y:q", "z:q"]
    np.testing.assert_array_equal(d.random[0].codes, [1, 0, 3, 2, 4, 4])


def test_lme4_orders_terms_by_levels():
    data = pd.DataFrame({"y": np.arange(12.0), "few": list("ab") * 6,
                         "many": list("abcdef") * 2})
    d = lp.design("y ~ (1 | few) + (1 | many)", data)
    assert [r.group for r in d.random] == ["many", "few"]
    d = lp.design("y ~ (1 | many) + (1 | few)", data)
    assert [r.group for r in d.random] == ["many", "few"]


def test_float_grouping_column_warns_and_works():
    data = pd.DataFrame({"y": np.arange(6.0), "g": [1.0, 1.0, 2.5, 2.5, 3.0, 3.0]})
    with pytest.warns(UserWarning, match="grouping column 'g' holds floats"):
        d = lp.design("y ~ (1 | g)", data)
    assert d.random[0].levels == ["1", "2.5", "3"]


def test_new_data_unseen_levels_are_reported(sleep):
    d = lp.design("Reaction ~ Days + (Days | Subject)", sleep)
    new = pd.DataFrame({"Days": [1.0, 2.0, 3.0], "Subject": ["308", "999", "1000"]})
    nd = d.for_new_data(new)
    assert nd.unseen == {"Subject": ["1000", "999"]}
    np.testing.assert_array_equal(nd.codes[0], [0, -1, -1])
    Z = nd.random[0].toarray()
    np.testing.assert_array_equal(Z[0, :2], [1.0, 1.0])
    assert not Z[1:].any()
    with pytest.raises(lp.DataError, match="column 'Days' not found in newdata"):
        d.for_new_data(new.drop(columns="Days"))


def test_nn_inputs_are_standardised_float32():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({f"x{i}": rng.normal(i, 1 + i, 50) for i in range(1, 4)})
    data["y"] = rng.normal(size=50)
    data["f"] = rng.choice(["a", "b", "c"], 50)
    d = lp.design("y ~ nn(x1 + ... + x3 + f, hidden=(8,))", data)
    (inp,) = d.nn
    assert inp.X.dtype == np.float32
    assert inp.names == ["x1", "x2", "x3", "fa", "fb", "fc"]
    np.testing.assert_allclose(inp.X.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(inp.X.std(axis=0), 1, atol=1e-5)
    again = inp.transform(data.iloc[:5])
    np.testing.assert_allclose(again, inp.X[:5], atol=1e-6)
    assert inp.options == {"hidden": (8,)}


def test_rbf_term_design():
    rng = np.random.default_rng(1)
    locs = rng.uniform(size=(10, 2))
    pick = rng.integers(0, 10, 60)
    data = pd.DataFrame({"y": rng.normal(size=60), "lat": locs[pick, 0], "lon": locs[pick, 1]})
    d = lp.design("y ~ rbf(lat, lon)", data)
    (r,) = d.random
    assert r.q == len(np.unique(pick)) and r.p == 1
    assert isinstance(r.cov, RBFKernel)
    # Λ Λ' is the scaled kernel: exp(-|s_i - s_j|^2 / (2 l^2)) * sd^2 (+ jitter)
    theta = np.array([0.7, 0.3])
    Lam = r.Lambda(theta).toarray()
    coords = r.cov.coords
    d2 = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    K = 0.49 * (np.exp(-d2 / (2 * 0.09)) + 1e-6 * np.eye(r.q))
    np.testing.assert_allclose(Lam @ Lam.T, K, rtol=1e-8, atol=1e-10)
    # every row of Z points at its own location
    Z = d.Z.toarray()
    assert (Z.sum(axis=1) == 1).all()
    np.testing.assert_allclose(coords[Z.argmax(axis=1)], data[["lat", "lon"]].to_numpy())


def test_covariance_maps():
    u = Unstructured(3)
    theta = np.array([1.0, 0.2, -0.3, 2.0, 0.5, 3.0])  # lme4 order: column-major lower
    T = u.template(theta)
    np.testing.assert_array_equal(T, [[1, 0, 0], [0.2, 2, 0], [-0.3, 0.5, 3]])
    np.testing.assert_array_equal(u.lower(), [0, -np.inf, -np.inf, 0, -np.inf, 0])
    np.testing.assert_array_equal(u.theta0(), [1, 0, 0, 1, 0, 1])
    L = u.Lambda(theta, 2).toarray()
    np.testing.assert_array_equal(L[:3, :3], T)
    np.testing.assert_array_equal(L[3:, 3:], T)
    assert not L[:3, 3:].any()
    dg = Diagonal(2)
    np.testing.assert_array_equal(dg.Lambda(np.array([2.0, 3.0]), 2).toarray(),
                                  np.diag([2.0, 3.0, 2.0, 3.0]))


def test_callers_frame_is_not_modified():
    data = pd.DataFrame({0: np.arange(6.0), "x": np.arange(6.0) ** 2})
    data.columns = ["y", 1]  # a non-string column name
    before = data.copy()
    d = lp.design("y ~ 1", data)
    assert d.n == 6
    pd.testing.assert_frame_equal(data, before)
    assert list(data.columns) == ["y", 1]


def test_dot_keeps_the_written_formula_and_skips_weights():
    data = pd.DataFrame({"y": np.arange(8.0), "a": np.arange(8.0) ** 2,
                         "g": list("ppqqrrss"), "w": np.ones(8)})
    m = lp.lmer("y ~ . + (1 | g)", data.drop(columns="w"), weights=data.w.to_numpy())
    assert m.fixef_names == ["(Intercept)", "a"]
    assert m.formula.as_written == "y ~ . + (1 | g)"


def test_response_on_the_right_is_dropped_as_in_R(sleep):
    # R's model.matrix drops the response's own term ("the response appeared on the
    # right-hand side and was dropped") and keeps an interaction holding it; lme4's columns
    # and estimates: tests/reference/lme4_console.R
    ref = read_reference("lme4_console.json")["response_on_right"]
    assert "the response appeared on the right-hand side and was dropped" in ref["warnings"]
    with pytest.warns(UserWarning, match="response 'Reaction' appeared on the right-hand "
                                         "side and was dropped \\(from Reaction\\)"):
        m = lp.lmer(ref["formula"], sleep)
    assert m.design.X_names == ref["fixef_names"]
    np.testing.assert_allclose(m.fixef().to_numpy(), ref["fixef"], rtol=1e-4)
    assert m.REMLcrit() == pytest.approx(ref["REMLcrit"], abs=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # another expression of the response is a predictor
        d = lp.design("log(Reaction) ~ Reaction + (1 | Subject)", sleep)
        assert d.X_names == ["(Intercept)", "Reaction"]
    # in a network's inputs every term holding the response goes: it would leak into it
    with pytest.warns(UserWarning, match="from nn\\(Days \\+ Reaction \\+ Reaction:Days\\)"
                                         " inputs"):
        d = lp.design("Reaction ~ nn(Days + Reaction + Days:Reaction) + (1 | Subject)", sleep)
    assert d.nn[0].names == ["Days"]
    with pytest.raises(lp.FormulaError, match="nn\\(Reaction\\) has no inputs but the "
                                              "response"):
        lp.design("Reaction ~ nn(Reaction) + (1 | Subject)", sleep)


def test_dot_inside_nn_means_every_other_column():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x1": rng.normal(size=40), "x2": rng.normal(size=40),
                         "f": rng.choice(["a", "b"], 40), "t": rng.normal(size=40),
                         "g": rng.choice(["u", "v", "w"], 40), "y": rng.normal(size=40)})
    d = lp.design("y ~ nn(.) + (t | g)", data)  # not y, g or t: the formula uses them
    assert d.nn[0].names == ["x1", "x2", "fa", "fb"] and d.X_names == ["(Intercept)"]
    d = lp.design("y ~ t + nn(. - f, hidden=(4,)) + (1 | g)", data)
    assert d.nn[0].names == ["x1", "x2"] and d.X_names == ["(Intercept)", "t"]
    assert str(d.nn[0].term) == "nn(x1 + x2, hidden = (4,))"
    assert str(lp.parse("y ~ nn(. - f) + (1 | g)")) == "y ~ 1 + nn(. - f) + (1 | g)"
    with pytest.raises(lp.FormulaError, match="can stand in one place only, not in the "
                                              "fixed part and nn\\(\\.\\)"):
        lp.design("y ~ . + nn(.) + (1 | g)", data)
    with pytest.raises(lp.DataError, match="leaves no column for the network"):
        lp.design("y ~ x1 + x2 + f + nn(.) + (t | g)", data)
    with pytest.raises(lp.FormulaError, match="cannot be part of an interaction"):
        lp.design("y ~ nn(.:x1) + (1 | g)", data)


def test_theta_names_are_lme4s_and_unique(sleep):
    """lme4's θ names (tests/design/test_lme4_structures.py checks them against lme4 for
    every structure); a repeated term's are made unique as R's make.unique."""
    from lmerpy.design.model import make_unique

    d = lp.design("Reaction ~ Days + (Days | Subject) + (1 | Subject)", sleep)
    assert d.theta_names() == ["Subject.(Intercept)", "Subject.Days.(Intercept)",
                               "Subject.Days", "Subject.(Intercept).1"]
    # R: make.unique(c("a", "a", "a.2", "a")) is "a" "a.1" "a.2" "a.3"
    assert make_unique(["a", "a", "a.2", "a"]) == ["a", "a.1", "a.2", "a.3"]
    assert make_unique(["a", "a", "a"]) == ["a", "a.1", "a.2"]
