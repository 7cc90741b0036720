"""Spatial (rbf) terms in the exact engine: the profiled deviance equals the dense Gaussian
likelihood written out in closed form, and the fit is its maximum."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import lmerpy as lp


def _spatial_data(seed: int = 3, n_loc: int = 40, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    locs = rng.uniform(0, 1, size=(n_loc, 2))
    d2 = ((locs[:, None] - locs[None]) ** 2).sum(-1)
    K = 1.5 * np.exp(-d2 / (2 * 0.3**2))
    b = np.linalg.cholesky(K + 1e-9 * np.eye(n_loc)) @ rng.normal(size=n_loc)
    pick = rng.integers(0, n_loc, n)
    x = rng.normal(size=n)
    y = 2.0 + 0.5 * x + b[pick] + rng.normal(scale=0.7, size=n)
    return pd.DataFrame({"y": y, "x": x, "lat": locs[pick, 0], "lon": locs[pick, 1]})


def dense_ml_deviance(data: pd.DataFrame, sd_rel: float, lengthscale: float,
                      jitter: float = 1e-6, weights: np.ndarray | None = None,
                      REML: bool = False) -> float:
    """-2 max_{β,σ} log L with V = σ² (s² (K_ℓ + jitter I) + W⁻¹) over the observations
    (W = diag(weights), I without them); ``REML``: the restricted likelihood instead,
    -2 log L_R = (n − p)(1 + log 2π s²) + log|R| + log|X'R⁻¹X|, s² = r'R⁻¹r/(n − p)."""
    coords = data[["lat", "lon"]].to_numpy()
    X = np.column_stack([np.ones(len(data)), data.x])
    y = data.y.to_numpy()
    locs, idx = np.unique(coords, axis=0, return_inverse=True)
    d2 = ((locs[:, None] - locs[None]) ** 2).sum(-1)
    K = np.exp(-d2 / (2 * lengthscale**2)) + jitter * np.eye(len(locs))
    Z = np.zeros((len(data), len(locs)))
    Z[np.arange(len(data)), idx.ravel()] = 1.0
    w = np.ones(len(data)) if weights is None else np.asarray(weights, dtype=float)
    R = sd_rel**2 * Z @ K @ Z.T + np.diag(1.0 / w)  # V / σ²
    Ri = np.linalg.inv(R)
    beta = np.linalg.solve(X.T @ Ri @ X, X.T @ Ri @ y)
    r = y - X @ beta
    n = len(y)
    if REML:
        N = n - X.shape[1]
        return (N * (1 + np.log(2 * np.pi * (r @ Ri @ r) / N)) + np.linalg.slogdet(R)[1]
                + np.linalg.slogdet(X.T @ Ri @ X)[1])
    s2 = r @ Ri @ r / n
    return n * np.log(2 * np.pi * s2) + np.linalg.slogdet(R)[1] + n


def test_rbf_profiled_deviance_is_the_dense_likelihood():
    data = _spatial_data()
    m = lp.lmer("y ~ x + rbf(lat, lon)", data, REML=False)
    for theta in ([0.8, 0.2], [1.7, 0.5], m.theta):
        ours = m.fit.pls.deviance(np.asarray(theta), REML=False)
        assert ours == pytest.approx(dense_ml_deviance(data, *theta), rel=1e-9)
    # the fit maximises the dense likelihood too
    best = minimize(lambda t: dense_ml_deviance(data, *t), m.theta, method="Nelder-Mead",
                    options={"xatol": 1e-8, "fatol": 1e-10})
    assert m.deviance() <= best.fun + 1e-6
    assert m.theta[1] > 0 and m.VarCorr().terms[0].group == "rbf(lat, lon)"


@pytest.mark.parametrize("REML", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_rbf_criteria_with_weights_and_reml_are_the_dense_likelihood(REML, weighted):
    """The one-spatial-term path (KernelFactor: through M = I + G^½ΣG^½ alone) against the
    closed-form likelihood, with prior weights and for REML, at θ far from and at θ̂."""
    data = _spatial_data(seed=11)
    w = np.random.default_rng(2).uniform(0.3, 3.0, len(data)) if weighted else None
    m = lp.lmer("y ~ x + rbf(lat, lon)", data, REML=REML, weights=w)
    assert type(m.fit.pls.factor).__name__ == "KernelFactor"
    for theta in ([0.0, 0.3], [0.05, 0.2], [2.5, 0.15], [0.9, 2.0], m.theta):
        ours = m.fit.pls.deviance(np.asarray(theta), REML=REML)
        assert ours == pytest.approx(dense_ml_deviance(data, *theta, weights=w, REML=REML),
                                     rel=1e-9)
    best = minimize(lambda t: dense_ml_deviance(data, *t, weights=w, REML=REML), m.theta,
                    method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10})
    assert m.deviance(REML) <= best.fun + 1e-6


@pytest.mark.parametrize("weighted", [False, True])
def test_rbf_blups_are_the_dense_conditional_mean(weighted):
    """b̂ = E[b | y] at θ̂ = s²K_ℓ Z'R⁻¹(y − Xβ̂), R = V/σ², written out densely: the fit
    solves it without Λ (KernelFactor.effects), also for locations whose rows all have weight
    zero (g = 0: their BLUP comes from the others through K alone)."""
    data = _spatial_data(seed=13)
    w = np.random.default_rng(4).uniform(0.3, 3.0, len(data)) if weighted else None
    if weighted:
        w[(data.lat == data.lat.iloc[0]).to_numpy()] = 0.0  # one location without weight
    m = lp.lmer("y ~ x + rbf(lat, lon)", data, REML=False, weights=w)
    assert type(m.fit.pls.factor).__name__ == "KernelFactor"
    r = m.design.random[0]
    sd_rel, ell = m.theta
    S = r.cov.coords
    K = np.exp(-((S[:, None] - S[None]) ** 2).sum(-1) / (2 * ell**2)) + 1e-6 * np.eye(len(S))
    Z = m.design.Z.toarray()
    X = np.column_stack([np.ones(len(data)), data.x])
    wt = np.ones(len(data)) if w is None else w
    keep = wt > 0
    Zk, Xk, yk = Z[keep], X[keep], data.y.to_numpy()[keep]
    Ri = np.linalg.inv(sd_rel**2 * Zk @ K @ Zk.T + np.diag(1.0 / wt[keep]))
    beta = np.linalg.solve(Xk.T @ Ri @ Xk, Xk.T @ Ri @ yk)
    b = sd_rel**2 * K @ Zk.T @ Ri @ (yk - Xk @ beta)
    np.testing.assert_allclose(m.fixef().to_numpy(), beta, rtol=1e-8)
    ours = m.ranef()["rbf(lat, lon)"]["(Intercept)"].to_numpy()
    np.testing.assert_allclose(ours, b, rtol=1e-6, atol=1e-9)
    if weighted:
        assert (Z[~keep].sum(0) > 0).any() and not (Zk[:, Z[~keep].sum(0) > 0] != 0).any()


def test_rbf_with_grouped_term():
    data = _spatial_data(seed=5)
    data["g"] = np.arange(len(data)) % 7
    m = lp.lmer("y ~ x + (1 | g) + rbf(lat, lon)", data, REML=False)
    assert [r.group for r in m.design.random] == ["g", "rbf(lat, lon)"]
    # the blocked factorisation and a plain dense one agree on the criterion
    from lmerpy.engines.factor import DenseFactor

    pls = m.fit.pls
    blocked = pls.deviance(m.theta, REML=False)
    pls.factor = DenseFactor(pls.terms, pls.cp.ZtZ)
    assert pls.deviance(m.theta, REML=False) == pytest.approx(blocked, rel=1e-10)


def test_new_locations_get_the_kriging_mean():
    data = _spatial_data(seed=7)
    m = lp.lmer("y ~ x + rbf(lat, lon)", data, REML=False)
    r = m.design.random[0]
    b = m.ranef()["rbf(lat, lon)"]["(Intercept)"].to_numpy()
    new = pd.DataFrame({"x": [0.0, 0.0, 0.0], "lat": [0.5, 2.0, data.lat.iloc[0]],
                        "lon": [0.5, 2.0, data.lon.iloc[0]]})
    pred = m.predict(new).to_numpy()
    base = m.fixef()["(Intercept)"]
    # closed form: k(s, S)(K(S, S) + jitter I)^-1 b
    ell = m.theta[1]
    S = r.cov.coords

    def k(a, B):
        return np.exp(-((a[None, :] - B) ** 2).sum(1) / (2 * ell**2))

    K = np.exp(-((S[:, None] - S[None]) ** 2).sum(-1) / (2 * ell**2)) + 1e-6 * np.eye(len(S))
    expected0 = base + k(np.array([0.5, 0.5]), S) @ np.linalg.solve(K, b)
    assert pred[0] == pytest.approx(expected0, rel=1e-8)
    assert pred[1] == pytest.approx(base, abs=1e-3)  # far away: back to the mean
    # a training location: its own BLUP
    own = r.levels.index(f"{data.lat.iloc[0]:.10g}, {data.lon.iloc[0]:.10g}")
    assert pred[2] == pytest.approx(base + b[own], rel=1e-10)


def test_kriging_weights_are_solved_once_per_fit(monkeypatch):
    """The training locations' kernel is factored for the first prediction at new
    locations only (seconds at 10,000 locations); later ones reuse its weights."""
    data = _spatial_data(seed=8)
    m = lp.lmer("y ~ x + rbf(lat, lon)", data, REML=False)
    cov = m.design.random[0].cov
    calls = []
    solve = type(cov).kriging_weights
    monkeypatch.setattr(type(cov), "kriging_weights",
                        lambda self, b, theta: calls.append(1) or solve(self, b, theta))
    first = m.predict(pd.DataFrame({"x": [0.0, 1.0], "lat": [0.3, 0.9], "lon": [0.2, 0.4]}))
    second = m.predict(pd.DataFrame({"x": [1.0], "lat": [0.9], "lon": [0.4]}))
    assert len(calls) == 1
    assert second.iloc[0] == pytest.approx(first.iloc[1], rel=1e-12)


def test_summary_reports_the_lengthscale_that_maximises_the_dense_likelihood():
    data = _spatial_data()
    m = lp.lmer("y ~ x + rbf(lat, lon)", data, REML=False)
    best = minimize(lambda t: dense_ml_deviance(data, *t), [1.0, 0.5], method="Nelder-Mead",
                    options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000})
    vc = m.VarCorr()
    assert vc.lengthscales["rbf(lat, lon)"] == pytest.approx(best.x[1], rel=2e-3)
    lines = str(m.summary()).splitlines()
    below = lines[next(i for i, line in enumerate(lines) if line.startswith(" Residual")) + 1]
    found = re.fullmatch(r" rbf\(lat, lon\): lengthscale (\S+) \(kernel exp\(-d\^2 / \(2 "
                         r"l\^2\)\)\)", below)
    assert found and float(found[1]) == pytest.approx(best.x[1], rel=2e-3)
    assert "lengthscale" not in set(vc.to_frame().var1)  # as.data.frame()'s layout kept


def test_named_term_with_a_start_lengthscale_and_re_form():
    data = _spatial_data(seed=5)
    data["g"] = (np.arange(len(data)) % 7).astype(str)
    m = lp.lmer('y ~ x + (1 | g) + rbf(lat, lon, name="space", lengthscale=0.2)', data,
                REML=False)
    spatial = m.design.random[1]
    assert spatial.cov.theta0()[1] == 0.2  # where ℓ starts; it is still estimated
    plain = lp.lmer("y ~ x + (1 | g) + rbf(lat, lon)", data, REML=False)
    assert plain.design.random[1].cov.theta0()[1] != 0.2
    np.testing.assert_allclose(m.theta, plain.theta, rtol=2e-3)  # the same optimum
    assert list(m.ranef()) == ["g", "space"] and m.ngrps == {"g": 7, "space": 40}
    assert [t.group for t in m.VarCorr().terms] == ["g", "space"]
    assert list(m.VarCorr().lengthscales) == ["space"]
    # re_form names a spatial term by its coordinates; without it, the fit drops b̂ of space
    b = m.ranef()["space"]["(Intercept)"].to_numpy()[spatial.codes]
    both = m.predict(data).to_numpy()
    np.testing.assert_allclose(m.predict(data, re_form="~(1 | g)").to_numpy(), both - b,
                               atol=1e-10)
    np.testing.assert_allclose(m.predict(data, re_form="~(1 | g) + rbf(lat, lon)"), both,
                               atol=1e-10)
    with pytest.raises(lp.ModelError, match="another random term is labelled 'g'"):
        lp.lmer('y ~ x + (1 | g) + rbf(lat, lon, name="g")', data)
