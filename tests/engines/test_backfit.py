"""Backfitting the network (engines/backfit.py): the identity it rests on, its objective
and BLUP solve against dense algebra, the PLS factor it reuses, and what it buys on one
factor and on crossed factors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import lmerpy as lp
from lmerpy.engines import backfit as backfit_module
from lmerpy.engines.backfit import LinearPart, backfit
from lmerpy.engines.pls import PLS, CrossProducts

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from paper_simulations import _f, multi, single  # noqa: E402


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


def _dense_pls(d, theta, rows, r, w=None):
    """[X ZΛ] and the coefficients of the penalised least squares over ``rows`` (dense),
    weighted by ``w`` if given."""
    lam = np.diag(np.repeat(theta, [t.q for t in d.random]))
    W = np.hstack([d.X, d.Z.toarray() @ lam])
    P = np.diag(np.r_[np.zeros(d.X.shape[1]), np.ones(lam.shape[0])])
    Om = np.ones(len(rows)) if w is None else w[rows]
    Wr = W[rows] * Om[:, None]
    return W, np.linalg.solve(Wr.T @ W[rows] + P, Wr.T @ r[rows])


@pytest.mark.parametrize("weighted", [False, True])
def test_the_backfitting_objective_is_the_profiled_pls_and_its_gradient_the_residual(weighted):
    """P(f) = min ‖W^½(y − f − Xβ − ZΛu)‖² + ‖u‖² against dense algebra, and its gradient in
    f is −2W(y − f − Xβ̂ − Zb̂) (envelope theorem) by central differences: the value and
    slope L-BFGS's line search reads must agree, which fails if the ‖u‖² term is left out
    (or, with prior weights W, if they are left out of the solve or of the gradient)."""
    d = lp.design("y ~ x + (1 | g) + (1 | h)", _crossed(70, 6))
    theta = np.array([0.8, 0.5])
    rows = np.arange(10, 70)
    w = np.random.default_rng(3).uniform(0.2, 4.0, d.n) if weighted else None
    lin = LinearPart(d, d.X, d.y, theta, rows, w)
    f = np.sin(np.arange(d.n) / 7.0)
    we, value = lin.residual(f[rows])
    W, coef = _dense_pls(d, theta, rows, d.y - f, w)
    u = coef[d.X.shape[1]:]
    expected_e = (d.y - f - W @ coef)[rows]
    omega = np.ones(len(rows)) if w is None else w[rows]
    np.testing.assert_allclose(we, omega * expected_e, rtol=1e-9, atol=1e-12)
    assert value == pytest.approx(expected_e @ (omega * expected_e) + u @ u, rel=1e-10)
    direction = np.random.default_rng(7).normal(size=len(rows))
    h = 1e-5
    slope = (lin.residual(f[rows] + h * direction)[1]
             - lin.residual(f[rows] - h * direction)[1]) / (2 * h)
    assert slope == pytest.approx(-2 * we @ direction, rel=1e-6)


def _net(width: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(1, width), torch.nn.Tanh(),
                               torch.nn.Linear(width, 1, bias=False))


def test_backfit_scores_the_validation_rows_by_the_training_rows_blup():
    """Iteration 0 scores the trained network: the validation rows' squared prediction
    error with β̂ and b̂ solved from the training rows at θ̂ — checked against the dense
    penalised least squares [X ZΛ]'[X ZΛ] + diag(0, I)."""
    data = _crossed(90, 3)
    d = lp.design("y ~ 1 + nn(x, hidden=(3,)) + (1 | g) + (1 | h)", data)
    net = _net()
    inputs = [torch.as_tensor(d.nn[0].X, dtype=torch.float32)]
    with torch.no_grad():
        f = net(inputs[0])[:, 0].double().numpy()
    rows = np.random.default_rng(4).permutation(d.n)
    val, train = np.sort(rows[:20]), np.sort(rows[20:])
    theta = np.array([0.7, 0.5])
    result = backfit([net], inputs, d, d.X, d.y, theta, train, val, max_iterations=0)
    W, coef = _dense_pls(d, theta, train, d.y - f)
    expected = np.mean((d.y - f - W @ coef)[val] ** 2)
    assert result.iterations == 0 and result.best_iteration == 0
    assert result.best_val_mse == pytest.approx(expected, rel=1e-6)


def test_backfit_keeps_the_best_network_it_scored(monkeypatch):
    """The network that comes back is the one of the best validation check (never worse
    than the trained one), and evaluating in passes of a few rows, with the graphs kept or
    run twice, gives the one-pass result."""
    data = _crossed(400, 8)
    d = lp.design("y ~ 1 + nn(x, hidden=(8,)) + (1 | g) + (1 | h)", data)
    inputs = [torch.as_tensor(d.nn[0].X, dtype=torch.float32)]
    rows = np.random.default_rng(9).permutation(d.n)
    val, train = np.sort(rows[:60]), np.sort(rows[60:])
    theta = np.array([0.9, 0.6])
    results, weights = [], []
    # one pass; passes of 97 rows keeping their graphs; run without the graph, then again
    for chunk, rows_a_pass in ((1 << 18, 1 << 18), (1 << 18, 97), (97, 97)):
        monkeypatch.setattr(backfit_module, "CHUNK_ROWS", chunk)
        monkeypatch.setattr(backfit_module, "PASS_ROWS", rows_a_pass)
        net = _net(8)
        results.append(backfit([net], inputs, d, d.X, d.y, theta, train, val,
                               max_iterations=40))
        weights.append(torch.cat([p.detach().ravel() for p in net.parameters()]))
        with torch.no_grad():
            f = net(inputs[0])[:, 0].double().numpy()
        W, coef = _dense_pls(d, theta, train, d.y - f)
        kept = np.mean((d.y - f - W @ coef)[val] ** 2)
        history = results[-1].history
        assert kept == pytest.approx(history.val_mse.min(), rel=1e-5)
        assert kept <= history.val_mse.iloc[0]
        assert results[-1].best_iteration > 0
        assert list(history.columns) == ["iteration", "train_mse", "val_mse", "evaluations",
                                         "seconds"]
    for result, weight in zip(results[1:], weights[1:]):
        assert result.best_iteration == results[0].best_iteration
        torch.testing.assert_close(weight, weights[0], rtol=1e-4, atol=1e-5)


def test_a_frozen_module_is_scored_and_kept():
    """A user's module with no trainable weights: backfitting scores it (iteration 0) and
    returns it as it was, rather than failing on an empty parameter list."""
    data = _crossed(120, 10)
    net = torch.nn.Linear(1, 1)
    net.requires_grad_(False)
    m = lp.lmer("y ~ nn(x, module='frozen') + (1 | g) + (1 | h)", data,
                modules={"frozen": net}, seed=0, epochs=2, verbose=False, device="cpu")
    info = m.torch_info["backfit"]
    assert info["iterations"] == 0 and info["best_iteration"] == 0
    assert info["evaluations"] == 0


def test_backfit_brings_the_network_closer_to_the_true_f():
    """One factor, sorted batches: training stops while the network still drifts closer;
    L-BFGS on the exact likelihood at θ̂ brings it closer to the simulation's true f, and
    the residual variance closer to its true 1 (paper eq. 28's f; benchmarks: E(f − f̂)²
    0.062 → 0.015 at n = 100,000)."""
    df, _, random, _ = single(4000, 50, 1.0, np.random.default_rng(2))
    f_true = _f(df[[f"x{i}" for i in range(1, 11)]].to_numpy())
    error, sigma2 = {}, {}
    for flag in (False, True):
        m = lp.lmer(f"y ~ nn(x1 + ... + x10, hidden=(32, 16)) + {random}", df, seed=0,
                    verbose=False, backfit=flag, device="cpu", epochs=40)
        fhat = m.predict(re_form="NA").to_numpy()
        error[flag] = float(np.mean((f_true - fhat - np.mean(f_true - fhat)) ** 2))
        sigma2[flag] = m.sigma ** 2
        if flag:
            assert m.torch_info["backfit"]["best_iteration"] > 0
            assert "Backfitting at θ̂:" in str(m.summary())
    assert error[True] < 0.7 * error[False]
    assert abs(sigma2[True] - 1) < abs(sigma2[False] - 1)


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
            assert m.torch_info["backfit"]["best_iteration"] > 0
    assert mse[True] < 0.9 * mse[False]


def test_backfit_options():
    """Asked for where it cannot run, backfitting is an error; "auto" (the default) runs it
    wherever it can, and never where it cannot."""
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
    assert unsplit.torch_info["backfit"] is None
    assert one.torch_info["backfit"]["evaluations"] >= 1
    assert two.torch_info["backfit"]["evaluations"] >= 1


def test_backfitting_uses_every_thread_that_training_leaves_aside(monkeypatch):
    """Training with small batches runs one CPU thread; backfitting's full-batch products
    run with the threads torch had before the fit (or threads=, when given), and the fit
    leaves torch's setting as it found it."""
    from lmerpy.engines import torch_engine

    seen = []

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return backfit(*args, **kwargs)

    monkeypatch.setattr(torch_engine, "backfit", recording)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        options = dict(epochs=2, verbose=False, seed=0, device="cpu")
        formula = "y ~ nn(x, hidden=(4,)) + (1 | g)"
        m = lp.lmer(formula, _crossed(200, 11), **options)
        assert m.history is not None and torch.get_num_threads() == 2
        lp.lmer(formula, _crossed(200, 11), threads=1, **options)
        assert seen == [2, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_backfitting_solves_on_one_blas_thread(monkeypatch):
    """The solves between the network's passes run on one OpenBLAS thread (its threads spin
    on after a call and took the cores from torch's backward: 0.13 s against 0.06 s an
    evaluation); torch keeps its threads, the factor is built before the limit, and the
    BLAS setting is restored afterwards."""
    from threadpoolctl import threadpool_info

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    seen = []
    real = backfit_module.LinearPart.residual

    def recording(self, f_train):
        seen.append((blas_threads(), torch.get_num_threads()))
        return real(self, f_train)

    monkeypatch.setattr(backfit_module.LinearPart, "residual", recording)
    data = _crossed(300, 12)
    d = lp.design("y ~ 1 + nn(x, hidden=(8,)) + (1 | g) + (1 | h)", data)
    rows = np.random.default_rng(3).permutation(d.n)
    val, train = np.sort(rows[:50]), np.sort(rows[50:])
    before = blas_threads(), torch.get_num_threads()
    backfit([_net(8)], [torch.as_tensor(d.nn[0].X, dtype=torch.float32)], d, d.X, d.y,
            np.array([0.9, 0.6]), train, val, max_iterations=5)
    assert seen and all(blas == {1} and threads == before[1] for blas, threads in seen)
    assert (blas_threads(), torch.get_num_threads()) == before
