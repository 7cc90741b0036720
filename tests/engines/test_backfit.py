"""Backfitting the network (engines/backfit.py): the identity it rests on, its BLUP solve
against dense algebra, the PLS factor it reuses, and what it buys on crossed factors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import lmerpy as lp
from lmerpy.engines.backfit import backfit
from lmerpy.engines.pls import PLS, CrossProducts

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from paper_simulations import multi  # noqa: E402


def _crossed(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g, h = rng.integers(0, 12, n), rng.integers(0, 7, n)
    x = rng.normal(size=n)
    y = np.sin(x) + rng.normal(size=12)[g] + 0.7 * rng.normal(size=7)[h] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str), "h": h.astype(str)})


def test_the_full_data_gradient_in_f_is_the_residual_at_the_blup():
    """V⁻¹ r = (r − Z b̂)/σ² with b̂ = Λ(Λ'Z'ZΛ + I)⁻¹Λ'Z'r (Woodbury): the gradient of the
    marginal NLL in f is the squared-error gradient at the BLUP, which backfitting follows."""
    d = lp.design("y ~ 0 + (1 | g) + (x | h)", _crossed(60, 0))
    theta = np.array([0.8, 0.6, 0.3, 0.5])
    sigma2 = 1.7
    r = d.y - 0.3
    pls = PLS(d.random, CrossProducts.build(d.X, d.Z, r, None), d.split_theta)
    b = np.asarray(pls.Lambda(theta) @ pls.solve(theta).u).ravel()
    Lam, Z = pls.Lambda(theta).toarray(), d.Z.toarray()
    V = sigma2 * (Z @ Lam @ Lam.T @ Z.T + np.eye(d.n))
    np.testing.assert_allclose(np.linalg.solve(V, r), (r - Z @ b) / sigma2, rtol=1e-10,
                               atol=1e-12)


def test_pls_keeps_its_factor_per_theta_and_takes_new_responses():
    """solve() refactors only when θ changes, and with_response() swaps the response; both
    give what a PLS built afresh gives."""
    data = _crossed(80, 1)
    d = lp.design("y ~ x + (1 | g) + (1 | h)", data)
    pls = PLS(d.random, CrossProducts.build(d.X, d.Z, d.y, None), d.split_theta)
    t1, t2 = np.array([0.9, 0.4]), np.array([0.3, 1.2])
    pls.solve(t1)
    pls.solve(t2)
    y2 = d.y + np.random.default_rng(2).normal(size=d.n)
    pls.cp = pls.cp.with_response(d.X, d.Z.T.tocsr(), y2)
    for theta in (t2, t1):
        fresh = PLS(d.random, CrossProducts.build(d.X, d.Z, y2, None), d.split_theta)
        a, b = pls.solve(theta), fresh.solve(theta)
        np.testing.assert_allclose(a.u, b.u, rtol=1e-12)
        np.testing.assert_allclose(a.beta, b.beta, rtol=1e-12)
        assert a.ml == pytest.approx(b.ml, rel=1e-12)


def test_backfit_scores_the_validation_rows_by_the_training_rows_blup():
    """Pass 0 scores the trained network: the validation rows' squared prediction error
    with β̂ and b̂ solved from the training rows at θ̂ — checked against the dense
    penalised least squares [X ZΛ]'[X ZΛ] + diag(0, I)."""
    data = _crossed(90, 3)
    d = lp.design("y ~ 1 + nn(x, hidden=(3,)) + (1 | g) + (1 | h)", data)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.Tanh(),
                              torch.nn.Linear(3, 1, bias=False))
    inputs = [torch.as_tensor(d.nn[0].X, dtype=torch.float32)]
    with torch.no_grad():
        f = net(inputs[0])[:, 0].double().numpy()
    rows = np.random.default_rng(4).permutation(d.n)
    val, train = np.sort(rows[:20]), np.sort(rows[20:])
    theta = np.array([0.7, 0.5])
    result = backfit([net], inputs, d, d.X, d.y, theta, train, val,
                     lambda p: torch.optim.Adam(p, lr=1e-3), 10, 0, 0,
                     np.random.default_rng(0))
    lam = np.diag(np.repeat(theta, [d.random[0].q, d.random[1].q]))
    W = np.hstack([d.X, d.Z.toarray() @ lam])
    P = np.diag(np.r_[np.zeros(d.X.shape[1]), np.ones(lam.shape[0])])
    coef = np.linalg.solve(W[train].T @ W[train] + P, W[train].T @ (d.y - f)[train])
    expected = np.mean((d.y - f - W @ coef)[val] ** 2)
    assert result.epochs == 0 and result.best_epoch == 0
    assert result.best_val_mse == pytest.approx(expected, rel=1e-10)


def test_backfit_improves_a_network_trained_among_crossed_factors():
    """Three crossed factors of variance 3 against σ²e = 1: a batch of the mini-batch NLL
    sees about one row of a level of the second and third factor, so their effects are
    noise on the network's gradient; backfitting's gradient holds them all (benchmarks:
    the paper's three-factor cell)."""
    df, _, random, _ = multi(3000, (30, 60, 90), 3.0, np.random.default_rng(0))
    test = np.random.default_rng(1).random(len(df)) < 0.2
    train, new = df[~test].reset_index(drop=True), df[test].reset_index(drop=True)
    mse = {}
    for flag in (False, True):
        m = lp.lmer(f"y ~ nn(x1 + ... + x10, hidden=(16,)) + {random}", train, seed=0,
                    verbose=False, backfit=flag, device="cpu")
        mse[flag] = float(np.mean((new.y - m.predict(new, allow_new_levels=True)) ** 2))
        if flag:
            info = m.torch_info["backfit"]
            assert info["best_epoch"] > 0
            assert "Backfitting at θ̂:" in str(m.summary())
            assert list(info["history"].columns) == ["epoch", "train_mse", "val_mse",
                                                     "seconds"]
    assert mse[True] < 0.9 * mse[False]


def test_backfit_options():
    """Asked for where it cannot run, backfitting is an error; "auto" (the default) runs it
    for several random terms only, and never where it cannot run."""
    data = _crossed(100, 5)
    with pytest.raises(lp.ModelError, match="backfit=True needs a validation split"):
        lp.lmer("y ~ nn(x, hidden=(2,)) + (1 | g)", data, backfit=True, validation=0,
                epochs=2, verbose=False)
    with pytest.raises(lp.ModelError, match="Gaussian models with nn"):
        lp.lmer("y ~ x + (1 | g)", data, engine="torch", backfit=True, epochs=2,
                verbose=False)
    with pytest.raises(lp.ModelError, match="backfit must be"):
        lp.lmer("y ~ nn(x, hidden=(2,)) + (1 | g)", data, backfit="yes", verbose=False)
    options = dict(epochs=2, verbose=False, seed=0, device="cpu")
    one = lp.lmer("y ~ nn(x, hidden=(2,)) + (1 | g)", data, **options)
    two = lp.lmer("y ~ nn(x, hidden=(2,)) + (1 | g) + (1 | h)", data, **options)
    unsplit = lp.lmer("y ~ nn(x, hidden=(2,)) + (1 | g) + (1 | h)", data, validation=0,
                      **options)
    assert one.torch_info["backfit"] is None and unsplit.torch_info["backfit"] is None
    assert two.torch_info["backfit"]["epochs"] >= 1
