"""Property tests: on random small data sets and formulas, fitting never fails unexpectedly,
predict(training data) equals fitted(), and the row order does not change the estimates."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lmerpy as lp

FORMULAS = [
    "y ~ x + (1 | g)",
    "y ~ x * f + (1 | g)",
    "y ~ x + (x | g)",
    "y ~ x + (x || g)",
    "y ~ 1 + (1 | g) + (1 | h)",
    "y ~ poly(x, 2) + (1 | g/h)",
    "y ~ f + I(x^2) + (1 | h:g)",
]


@st.composite
def datasets(draw):
    n = draw(st.integers(20, 60))
    seed = draw(st.integers(0, 2**31 - 1))
    q = draw(st.integers(2, 6))
    rng = np.random.default_rng(seed)
    g = rng.integers(0, q, n)
    g[:q] = np.arange(q)  # every level present
    df = pd.DataFrame({
        "x": rng.normal(size=n) * draw(st.sampled_from([1.0, 10.0, 0.01])),
        "f": rng.choice(["a", "b", "c"], n),
        "g": [f"g{v}" for v in g],
        "h": rng.choice(["u", "v", "w"], n),
    })
    df["y"] = rng.normal(size=n) + g * draw(st.floats(0, 2)) + df.x * 0.5
    return df, draw(st.sampled_from(FORMULAS)), seed


def _fit(formula, df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return lp.lmer(formula, df)
        except lp.LmerpyError:
            return None  # refused with a precise error: acceptable (e.g. too few rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_predict_on_training_data_is_fitted(case):
    df, formula, _ = case
    m = _fit(formula, df)
    if m is None:
        return
    np.testing.assert_allclose(m.predict(df), m.fitted(), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(m.predict(), m.fitted(), rtol=1e-10, atol=1e-10)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_row_order_does_not_change_the_estimates(case):
    df, formula, seed = case
    a = _fit(formula, df)
    if a is None:
        return
    shuffled = df.sample(frac=1.0, random_state=seed % 1000).reset_index(drop=True)
    b = _fit(formula, shuffled)
    assert b is not None
    assert abs(a.REMLcrit() - b.REMLcrit()) < 1e-6 * max(1.0, abs(a.REMLcrit()))
    # estimates agree to a small fraction of their standard errors (optimiser tolerance)
    se = np.sqrt(np.diag(a.vcov().to_numpy()))
    assert np.all(np.abs(a.fixef().to_numpy() - b.fixef().to_numpy()) <= 1e-3 * se + 1e-10)


# Every valid formula of the grammar corpus, on random data whose columns are numbers or
# categories at random: building the design either works or raises a LmerpyError.
from tests.conftest import corpus  # noqa: E402

CORPUS = [row[0] for row in corpus("valid.tsv")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CORPUS), st.integers(0, 2**31 - 1), st.integers(8, 40))
def test_design_of_corpus_formulas_never_crashes(formula, seed, n):
    rng = np.random.default_rng(seed)
    parsed = lp.parse(formula)
    data = {}
    for name in parsed.variables():
        kind = rng.integers(0, 3)
        if kind == 0:
            data[name] = rng.normal(size=n)
        elif kind == 1:
            data[name] = rng.choice(["a", "b", "c"], n)
        else:
            data[name] = rng.integers(1, 5, n).astype(float)
    data.setdefault("y", rng.normal(size=n))
    frame = pd.DataFrame(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            lp.design(parsed, frame)
        except lp.LmerpyError:
            pass
