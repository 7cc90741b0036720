"""A design restricted to the rows at some spatial locations is the design of those rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from lmerpy.design.subset import at_locations
from lmerpy.engines.exact import fit_lmer


def _data(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    loc = rng.integers(0, 15, n)
    coords = rng.uniform(0, 1, (15, 2))
    return pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                         "g": rng.integers(0, 4, n).astype(str), "off": rng.normal(size=n),
                         "lat": coords[loc, 0], "lon": coords[loc, 1]})


def test_at_locations_is_the_design_of_those_rows():
    data = _data()
    formula = "y ~ x + offset(off) + nn(x) + (1 | g) + rbf(lat, lon)"
    d = lp.design(formula, data)
    term = [r.group for r in d.random].index("rbf(lat, lon)")
    spatial = d.random[term]
    keep = np.array([11, 2, 7, 3])
    sub, rows = at_locations(d, term, keep)
    labels = np.array(spatial.levels)
    expected_rows = np.flatnonzero(np.isin(labels[spatial.codes], labels[keep]))
    np.testing.assert_array_equal(rows, expected_rows)
    direct = lp.design(formula, data.iloc[rows])
    np.testing.assert_array_equal(sub.y, direct.y)
    np.testing.assert_array_equal(sub.X, direct.X)
    np.testing.assert_array_equal(sub.offset, direct.offset)
    np.testing.assert_array_equal(sub.nn[0].X, d.nn[0].X[rows])
    assert list(sub.index) == list(data.index[rows])
    # the spatial term holds the kept locations alone: the same locations row by row
    s = sub.random[term]
    assert s.q == 4 and s.Z.shape == (len(rows), 4)
    np.testing.assert_array_equal(s.cov.coords[s.codes],
                                  data[["lat", "lon"]].to_numpy()[rows])
    # the grouped term keeps all its levels
    g = sub.random[1 - term]
    assert g.levels == d.random[1 - term].levels and g.Z.shape == (len(rows), 4)
    np.testing.assert_array_equal(g.codes, d.random[1 - term].codes[rows])
    # the same likelihood as the design built from those rows
    theta = np.array([0.7, 1.2, 0.4])
    ours = fit_lmer(sub, REML=False, fixed_theta=theta).solution.ml
    assert ours == pytest.approx(fit_lmer(direct, REML=False, fixed_theta=theta).solution.ml,
                                 rel=1e-12)


def test_at_locations_refuses_a_grouped_term():
    d = lp.design("y ~ x + (1 | g) + rbf(lat, lon)", _data())
    term = [r.group for r in d.random].index("g")
    with pytest.raises(TypeError, match="not spatial"):
        at_locations(d, term, np.array([0]))
