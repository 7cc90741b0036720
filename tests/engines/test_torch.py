"""The torch engine (LMMNN): its batch NLL is the Gaussian likelihood, full-batch training
reaches the exact ML fit, seeds reproduce, networks learn what a linear model cannot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import multivariate_normal

import lmerpy as lp
from lmerpy.engines.batch_nll import CovarianceParams, batch_nll
from lmerpy.engines.batching import EpochBatches, epoch_order


def _nonlinear(n: int, q: int, seed: int) -> pd.DataFrame:
    """The paper's eq. 28 with a random intercept: y = s·cos(s) + 2·x1·x2 + b_g + ε."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 10))
    s = X.sum(1)
    g = rng.integers(0, q, n)
    b = rng.normal(size=q)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(1, 11)])
    df["y"] = s * np.cos(s) + 2 * X[:, 0] * X[:, 1] + b[g] + rng.normal(size=n)
    df["g"] = g.astype(str)
    return df


def _random_model(formula, rng, n, sigma):
    """A design of random data (factors g, h, u with 6, 4 and 30 levels; a 5 × 3 grid of
    locations) and covariance parameters moved off their start."""
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                         "g": rng.integers(0, 6, n).astype(str),
                         "h": rng.integers(0, 4, n).astype(str),
                         "u": rng.integers(0, 30, n).astype(str),
                         "lat": rng.integers(0, 5, n) / 5.0, "lon": rng.integers(0, 3, n) / 3.0})
    d = lp.design(formula, data)
    cov = CovarianceParams(d.random, sigma)
    with torch.no_grad():
        for f in cov.factors:
            f.add_(torch.as_tensor(rng.normal(scale=0.3, size=f.shape)))
    return d, cov


@pytest.mark.parametrize("formula", [
    "y ~ x + (1 | g)",
    "y ~ x + (x | g)",
    "y ~ x + (1 | g) + (1 | h)",
    "y ~ x + rbf(lat, lon)",
    "y ~ x + (1 | g) + (x | u)",  # more random-effect columns than rows: the m×m system
])
def test_batch_nll_is_the_multivariate_normal(formula):
    n = 40
    d, cov = _random_model(formula, np.random.default_rng(0), n, 1.3)
    r = torch.as_tensor(d.y - 0.1)
    codes = [torch.as_tensor(t.codes) for t in d.random]
    Xs = [torch.as_tensor(t.X) for t in d.random]
    ours = float(batch_nll(r, cov, codes, Xs).detach())
    # the same model written out densely: V = σ²(Z Λ Λ'Z' + I) with lme4's θ
    theta = cov.theta()
    Zl = d.Z @ d.Lambda(theta)
    s2 = float(cov.sigma.detach()) ** 2
    V = s2 * (Zl @ Zl.T + np.eye(n))
    expected = -multivariate_normal(mean=np.zeros(n), cov=V).logpdf(r.numpy())
    assert ours == pytest.approx(expected, rel=1e-6)


def _one_factor_model(formula, rng, n, levels, sigma):
    """A design with one grouping factor of random data, and covariance parameters moved
    off their start so that every entry of the factor matters."""
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                         "g": rng.integers(0, levels, n).astype(str)})
    d = lp.design(formula, data)
    cov = CovarianceParams(d.random, sigma)
    with torch.no_grad():
        cov.factors[0].add_(torch.as_tensor(rng.normal(scale=0.3, size=cov.factors[0].shape)))
    return d, cov


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (x | g)"])
def test_batch_nlls_against_the_full_nll_by_batching(formula):
    """With whole groups per batch the batch NLLs add up to the NLL of all rows (V is block
    diagonal by group; paper §3.1); batches of the same size cut from rows sorted by group
    (the paper's code) split a group only at a batch's end and come close; random batches
    are far off."""
    rng = np.random.default_rng(2)
    n = 120
    d, cov = _one_factor_model(formula, rng, n, 15, 0.9)
    r = torch.as_tensor(d.y - 0.2)
    codes = np.asarray(d.random[0].codes)
    with torch.no_grad():
        full = float(batch_nll(r, cov, [torch.as_tensor(codes)],
                               [torch.as_tensor(d.random[0].X)]))
    error = {}
    for mode in ("group", "sorted", "random"):
        order, order_groups = epoch_order(np.arange(n), rng, None if mode == "random" else
                                          codes)
        epoch = EpochBatches.build({"r": r, "Xk": [torch.as_tensor(d.random[0].X)]},
                                   [codes], order, order_groups if mode == "group" else None,
                                   20, "cpu")
        if mode != "group":
            assert set(np.diff(epoch.bounds)) == {20}
        with torch.no_grad():
            total = sum(float(batch_nll(b["r"], cov, None, b["Xk"], segments=b["segments"]))
                        for b in map(epoch.batch, range(len(epoch))))
        error[mode] = abs(total - full)
    assert error["group"] <= 1e-10 * abs(full)
    assert error["random"] > 1e-2 * abs(full)
    assert error["sorted"] < error["random"] / 3


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (0 + x | g)",
                                     "y ~ x + (x | g)"])
def test_batch_nll_gradient_is_the_multivariate_normal_gradient(formula):
    """The hand-written gradient of the scalar-term NLL (and autograd's for the others)
    equals autograd's gradient of the dense Gaussian NLL, for r, log σ and the factor."""
    rng = np.random.default_rng(1)
    n = 30
    d, cov = _one_factor_model(formula, rng, n, 5, 0.8)
    r = torch.as_tensor(rng.normal(size=n), dtype=torch.float64).requires_grad_(True)
    codes, Xs = [torch.as_tensor(d.random[0].codes)], [torch.as_tensor(d.random[0].X)]
    ours = torch.autograd.grad(batch_nll(r, cov, codes, Xs),
                               [r, cov.log_sigma, cov.factors[0]], allow_unused=True)
    # dense: V = Z (L L') Z' + σ² I with Z the term's columns placed by level
    Z = torch.zeros(n, 5 * d.random[0].p, dtype=torch.float64)
    for i, (c, x) in enumerate(zip(d.random[0].codes, d.random[0].X)):
        Z[i, c * len(x):(c + 1) * len(x)] = torch.as_tensor(x)
    L = cov.chol(0)
    D = torch.block_diag(*[L @ L.T] * 5)
    V = Z @ D @ Z.T + cov.sigma ** 2 * torch.eye(n, dtype=torch.float64)
    dense = -torch.distributions.MultivariateNormal(torch.zeros(n, dtype=torch.float64),
                                                    V).log_prob(r)
    expected = torch.autograd.grad(dense, [r, cov.log_sigma, cov.factors[0]])
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (x | g)",
                                     "y ~ x + (1 | g) + (1 | h)",
                                     "y ~ x + (1 | g) + rbf(lat, lon)"])
def test_levels_absent_from_a_batch_change_nothing(formula):
    """A CUDA graph sizes each term's system for the most levels a batch can hold and pads
    the levels present with −1 (train_step.py): that must leave the NLL and every gradient
    unchanged."""
    d, cov = _random_model(formula, np.random.default_rng(5), 25, 0.7)
    Xs = [torch.as_tensor(t.X) for t in d.random]
    segments = [torch.unique(torch.as_tensor(t.codes), return_inverse=True) for t in d.random]
    padded = [(torch.cat([present, torch.full((9,), -1)]), inv) for present, inv in segments]
    values = []
    for segs in (segments, padded):
        r = torch.as_tensor(d.y - 0.3).requires_grad_(True)
        nll = batch_nll(r, cov, None, Xs, segments=segs)
        values.append([nll, *torch.autograd.grad(nll, [r, cov.log_sigma, *cov.factors])])
    for a, b in zip(*values):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12,
                                   atol=1e-14)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("formula", ["(1 | g)", "(1 + x1 | g)", "(1 | g) + (1 | h)",
                                     "rbf(lat, lon)"])
def test_cuda_graph_steps_train_as_eager_steps(device, formula):
    """Replaying captured steps (the default on a GPU) trains the same run as eager steps,
    the last, shorter batch of each epoch included; on the CPU the option changes nothing."""
    data = _nonlinear(1030, 40, 3)
    data["h"] = (np.arange(len(data)) % 9).astype(str)
    data["lat"], data["lon"] = np.arange(len(data)) % 7, np.arange(len(data)) % 11 / 2
    kwargs = dict(seed=2, epochs=6, patience=0, batch_size=100, verbose=False, device=device,
                  refine=False)
    formula = f"y ~ nn(x1 + ... + x10, hidden=(16, 8), dropout=0) + {formula}"
    graphs = lp.lmer(formula, data, **kwargs)
    eager = lp.lmer(formula, data, cuda_graphs=False, **kwargs)
    cols = ["train_nll", "val_nll", "sigma2"]
    np.testing.assert_allclose(graphs.history[cols], eager.history[cols], rtol=1e-4)
    np.testing.assert_allclose(graphs.theta, eager.theta, rtol=1e-3)


@pytest.mark.parametrize("data_kind", ["sleepstudy", "crossed"])
def test_full_batch_training_reaches_the_exact_ml_fit(data_kind):
    if data_kind == "sleepstudy":
        data = lp.datasets.load("sleepstudy")
        formula = "Reaction ~ Days + (Days | Subject)"
    else:
        rng = np.random.default_rng(3)
        n = 1500
        a, b = rng.integers(0, 30, n), rng.integers(0, 20, n)
        x = rng.normal(size=n)
        y = 1 + 0.5 * x + rng.normal(size=30)[a] + 0.6 * rng.normal(size=20)[b] + \
            rng.normal(size=n)
        data = pd.DataFrame({"y": y, "x": x, "a": a.astype(str), "b": b.astype(str)})
        formula = "y ~ x + (1 | a) + (1 | b)"
    exact = lp.lmer(formula, data, REML=False)
    # refine=False: the estimates come from training alone, not from the exact ML step
    fit = lp.lmer(formula, data, engine="torch", batch_size=len(data), lr=0.05, epochs=1500,
                  patience=0, validation=0, seed=0, verbose=False, refine=False)
    np.testing.assert_allclose(fit.theta, exact.theta, rtol=0.02, atol=1e-3)
    np.testing.assert_allclose(fit.fixef(), exact.fixef(), rtol=0.02)
    assert fit.sigma == pytest.approx(exact.sigma, rel=0.02)
    assert fit.deviance() == pytest.approx(exact.deviance(), abs=0.05)


def test_seed_makes_cpu_training_reproducible():
    data = _nonlinear(600, 12, 1)
    kwargs = dict(seed=7, epochs=4, verbose=False, batch_size=64, device="cpu")
    formula = "y ~ nn(x1 + ... + x10, hidden=(16, 8)) + (1 | g)"
    a = lp.lmer(formula, data, **kwargs)
    b = lp.lmer(formula, data, **kwargs)
    # everything but the wall-clock column is bit-for-bit the same
    pd.testing.assert_frame_equal(a.history.drop(columns="seconds"),
                                  b.history.drop(columns="seconds"))
    np.testing.assert_array_equal(a.fitted().to_numpy(), b.fitted().to_numpy())
    c = lp.lmer(formula, data, **{**kwargs, "seed": 8})
    assert not np.array_equal(a.fitted().to_numpy(), c.fitted().to_numpy())


def test_network_learns_what_a_linear_model_cannot():
    data = _nonlinear(4000, 40, 2)
    test = np.random.default_rng(0).random(len(data)) < 0.25
    train, new = data[~test], data[test]
    m = lp.lmer("y ~ nn(x1 + ... + x10, hidden=(64, 32), dropout=0.1) + (1 | g)", train,
                seed=0, epochs=60, verbose=False, lr=3e-3)
    lin = lp.lmer("y ~ x1 + ... + x10 + (1 | g)", train, REML=False)
    mse_nn = np.mean((new.y - m.predict(new, allow_new_levels=True)) ** 2)
    mse_lin = np.mean((new.y - lin.predict(new, allow_new_levels=True)) ** 2)
    assert mse_nn < 0.8 * mse_lin
    # a network input missing: that row predicts NaN, the others as before (lme4's na.pass)
    holes = new.copy()
    holes.loc[holes.index[3], "x7"] = np.nan
    pred, with_holes = m.predict(new, allow_new_levels=True), \
        m.predict(holes, allow_new_levels=True)
    assert np.isnan(with_holes.iloc[3]) and with_holes.isna().sum() == 1
    np.testing.assert_allclose(with_holes.drop(holes.index[3]), pred.drop(new.index[3]),
                               rtol=1e-6)
    assert m.history.shape[0] == m.torch_info["epochs"]
    assert set(m.history.columns) >= {"epoch", "train_nll", "val_nll", "sigma2",
                                      "g.(Intercept)"}
    text = str(m.summary())
    assert "Fixed effects (neural network):" in text and "Linear(10, 64)" in text
    re = m.ranef()["g"]
    assert re.shape == (40, 1)


def test_refinement_is_the_exact_ml_fit_given_the_network():
    data = _nonlinear(1500, 20, 5)
    m = lp.lmer("y ~ nn(x1 + ... + x10, hidden=(16,)) + (1 | g)", data, seed=0, epochs=5,
                verbose=False)
    net = m.torch_info["nn_predict"]([inp.X for inp in m.design.nn])
    given = data.assign(net=net)
    exact = lp.lmer("y ~ 1 + offset(net) + (1 | g)", given, REML=False)
    np.testing.assert_allclose(m.theta, exact.theta, rtol=1e-3)
    assert m.sigma == pytest.approx(exact.sigma, rel=1e-4)
    assert not np.allclose(m.torch_info["trained_theta"], m.theta)


def _spatial_nonlinear(n: int = 300, locations: int = 12, seed: int = 3) -> pd.DataFrame:
    """y = sin(2 x1) + b(location) + ε, b a Gaussian process of lengthscale 1."""
    rng = np.random.default_rng(seed)
    loc = rng.integers(0, locations, n)
    coords = rng.uniform(-2, 2, (locations, 2))
    K = np.exp(-((coords[:, None] - coords[None]) ** 2).sum(-1) / 2) + 1e-8 * np.eye(locations)
    b = np.linalg.cholesky(K) @ rng.normal(size=locations)
    data = pd.DataFrame({"x1": rng.uniform(-1, 1, n), "lat": coords[loc, 0],
                         "lon": coords[loc, 1]})
    data["y"] = np.sin(2 * data.x1) + b[loc] + rng.normal(scale=0.5, size=n)
    return data


def test_refinement_above_the_spatial_limit_uses_a_subset_of_locations(monkeypatch):
    """Beyond REFINE_SPATIAL_LIMIT locations θ is the exact ML estimate given the network
    on the rows at a random REFINE_SPATIAL_LIMIT of the locations; σ̂ and the BLUPs are
    then the exact solve over all rows at that θ̂; the summary says which rows."""
    from lmerpy.engines import torch_engine

    data = _spatial_nonlinear(n=900, locations=40)
    formula = "y ~ nn(x1, hidden=(8,)) + rbf(lat, lon)"
    kwargs = dict(seed=0, epochs=3, verbose=False, device="cpu", batching="random")
    monkeypatch.setattr(torch_engine, "REFINE_SPATIAL_LIMIT", 25)
    m = lp.lmer(formula, data, **kwargs)
    group, kept = m.torch_info["refined_on"]
    assert group == "rbf(lat, lon)" and len(kept) == 25 == len(set(kept))
    assert ("θ̂ from exact ML given the network, on the rows at a random 25 of the 40 "
            "spatial locations" in str(m.summary()))
    net = m.torch_info["nn_predict"]([inp.X for inp in m.design.nn])
    given = data.assign(net=net)
    levels = m.design.random[0].levels
    at = np.isin(np.array(levels)[m.design.random[0].codes], np.array(levels)[kept])
    exact_subset = lp.lmer("y ~ 1 + offset(net) + rbf(lat, lon)", given[at], REML=False)
    np.testing.assert_allclose(m.theta, exact_subset.theta, rtol=2e-3)
    assert not np.allclose(m.theta, m.torch_info["trained_theta"])
    # over all rows at that θ̂: the profiled σ and the BLUPs of every location
    exact_all = lp.lmer("y ~ 1 + offset(net) + rbf(lat, lon)", given, REML=False)
    pls = exact_all.fit.pls
    sol = pls.solve(m.theta)
    assert m.sigma == pytest.approx(pls.sigma(sol, REML=False), rel=1e-8)
    np.testing.assert_allclose(m.ranef()["rbf(lat, lon)"]["(Intercept)"].to_numpy(),
                               np.asarray(pls.Lambda(m.theta) @ sol.u).ravel(),
                               rtol=1e-6, atol=1e-9)
    # within the limit, no subset
    monkeypatch.setattr(torch_engine, "REFINE_SPATIAL_LIMIT", 40)
    assert lp.lmer(formula, data, **kwargs).torch_info["refined_on"] is None


def test_refinement_is_skipped_for_several_spatial_terms_above_the_limit(monkeypatch):
    """Two spatial terms beyond REFINE_SPATIAL_LIMIT: θ stays as trained, as the summary
    says."""
    from lmerpy.engines import torch_engine

    data = _spatial_nonlinear()
    data["u"], data["v"] = data.lat.round(3) + 5, data.lon.round(3) - 5
    monkeypatch.setattr(torch_engine, "REFINE_SPATIAL_LIMIT", 7)
    m = lp.lmer("y ~ nn(x1, hidden=(8,)) + rbf(lat, lon) + rbf(u, v)", data, seed=0,
                epochs=3, verbose=False, device="cpu", batching="random")
    np.testing.assert_array_equal(m.theta, m.torch_info["trained_theta"])
    assert ("θ̂ from training (exact refinement skipped: several spatial terms of more than "
            "7 locations)" in str(m.summary()))


@pytest.mark.parametrize("batching", ["sorted", "group"])
def test_custom_module_and_level_batching(batching):
    data = _nonlinear(500, 10, 3)

    def fit():
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.Tanh(),
                                  torch.nn.Linear(8, 1))
        return lp.lmer('y ~ nn(x1 + ... + x10, module="mine") + (1 | g)', data,
                       modules={"mine": net}, seed=0, epochs=3, verbose=False,
                       batching=batching, device="cpu")

    m = fit()
    assert m.torch_info["networks"][0]["parameters"] == 10 * 8 + 8 + 8 + 1
    assert m.torch_info["control"]["batching"] == batching
    pd.testing.assert_frame_equal(m.history.drop(columns="seconds"),
                                  fit().history.drop(columns="seconds"))
    with pytest.raises(lp.ModelError, match="modules="):
        lp.lmer('y ~ nn(x1 + x2, module="other") + (1 | g)', data, epochs=1, verbose=False)


class _Pair(torch.nn.Module):
    """Returns a tuple, not a tensor."""

    def forward(self, x):
        return x, x


@pytest.mark.parametrize("module, message", [
    (torch.nn.Linear(2, 3), r"one output per row, .*on 2 rows it gave \(2, 3\)"),
    (torch.nn.Identity(), r"one output per row, .*on 2 rows it gave \(2, 2\)"),
    (torch.nn.Linear(5, 1), r"failed on a batch of 2 input column\(s\) .*: mat1 and mat2"),
    (torch.nn.Linear(2, 1).double(), r"its parameters are float64: .*module\.float\(\)"),
    (_Pair(), "must return a float tensor, not tuple"),
])
def test_a_users_module_is_checked_before_training(module, message):
    """A module that cannot take the term's columns, or gives other than one number per row,
    is refused before training with its name (a silently cut output was the danger)."""
    data = _nonlinear(200, 5, 0)
    with pytest.raises(lp.ModelError, match=r"modules\['net'\] .*" + message):
        lp.lmer('y ~ nn(x1 + x2, module="net") + (1 | g)', data, modules={"net": module},
                epochs=1, verbose=False)
    with pytest.raises(lp.ModelError, match="uses the module as given: dropout, hidden would"):
        lp.lmer('y ~ nn(x1 + x2, module="net", hidden=(4,), dropout=0) + (1 | g)', data,
                modules={"net": torch.nn.Linear(2, 1)}, epochs=1, verbose=False)
    flat = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0))  # (rows,) is fine
    m = lp.lmer('y ~ nn(x1 + x2, module="net") + (1 | g)', data, modules={"net": flat},
                epochs=1, verbose=False)
    assert np.isfinite(m.fitted()).all()


def test_training_option_errors():
    data = _nonlinear(200, 5, 4)
    with pytest.raises(lp.ModelError, match="unknown training option"):
        lp.lmer("y ~ nn(x1) + (1 | g)", data, learning_rate=0.1)
    with pytest.raises(lp.ModelError, match="only apply to engine='torch'"):
        lp.lmer("y ~ x1 + (1 | g)", data, epochs=3)
    with pytest.raises(lp.ModelError, match="need engine='torch'"):
        lp.lmer("y ~ nn(x1) + (1 | g)", data, engine="exact")
    with pytest.raises(lp.ModelError, match="batching must be"):
        lp.lmer("y ~ nn(x1) + (1 | g)", data, batching="rows", verbose=False)


def test_verbose_false_prints_nothing(capfd):
    data = _nonlinear(300, 6, 3)
    lp.lmer("y ~ nn(x1 + x2, hidden=(4,)) + (1 | g)", data, epochs=2, verbose=False, seed=0)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_sorted_batches_learn_an_rbf_lengthscale_in_training():
    """Sorted along space, a batch holds nearby locations, so training alone (θ kept as
    trained, as above 3,000 locations) learns the lengthscale: 0.5 here. Random batches of
    the same data leave it at 2.9 (measured), since 100 random rows seldom hold two
    locations closer than a few lengthscales."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from paper_simulations import spatial

    df, _, random, _ = spatial(4000, 400, 1.0, np.random.default_rng(0), lengthscale=0.5)
    m = lp.lmer(f"y ~ nn(x1 + ... + x10, hidden=(16,)) + {random}", df, seed=0,
                verbose=False, refine=False, device="cpu")
    assert m.torch_info["control"]["batching"] == "sorted"
    assert m.theta[1] == pytest.approx(0.5, abs=0.15)


def test_progress_description_gives_the_variance_components():
    """The progress bar's variance components are σ²·diag(ΛΛ') of lme4's θ (and, for an rbf
    term, σ²θ₀² and the lengthscale): the same numbers VarCorr would print."""
    d, cov = _random_model("y ~ x + (x | g) + rbf(lat, lon)", np.random.default_rng(3), 40,
                           1.3)
    theta, s2 = cov.theta(), float(cov.sigma.detach()) ** 2
    L = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
    expected = [*np.diag(L @ L.T) * s2, s2 * theta[3] ** 2, theta[4]]
    text = cov.describe()
    groups = [t.group for t in d.random]
    assert text.startswith(groups[0] + " ") and f"  {groups[1]} " in text
    numbers = [float(w) for w in text.replace("ℓ", "").split() if w[0].isdigit()]
    assert numbers == pytest.approx(expected, rel=5e-3)  # three significant digits


def test_progress_bar_shows_epoch_losses_and_variance_components(monkeypatch):
    """On a terminal the bar's text carries the epoch, both NLLs, σ² and the components."""
    from rich.progress import Progress

    seen = []
    real_update = Progress.update

    def update(self, task, **kw):
        seen.append(kw.get("description", ""))
        return real_update(self, task, **kw)

    monkeypatch.setattr(Progress, "update", update)
    monkeypatch.setattr("rich.console.Console.is_terminal", property(lambda self: True))
    df = _nonlinear(600, 6, 0)
    lp.lmer("y ~ nn(x1 + x2, hidden=(4,)) + (1 | g)", df, epochs=2, seed=0, verbose=True,
            refine=False)
    assert len(seen) == 2
    assert seen[-1].startswith("epoch 2  train ") and " val " in seen[-1]
    assert " σ² " in seen[-1] and "  g " in seen[-1]


@pytest.mark.parametrize("jupyter, widgets, terminal, shown", [
    (True, True, False, True), (True, False, False, False), (False, False, True, True),
    (False, True, False, False)])
def test_progress_bar_in_a_notebook_needs_ipywidgets(monkeypatch, jupyter, widgets, terminal,
                                                     shown):
    """rich is no terminal in Jupyter, where it draws live output in an ipywidgets widget:
    the bar shows there when ipywidgets is installed (without, rich would only warn)."""
    from rich.progress import Progress

    from lmerpy.engines import torch_engine

    monkeypatch.setattr("rich.console._is_jupyter", lambda: jupyter)
    monkeypatch.setattr("rich.console.Console.is_terminal", property(lambda self: terminal))
    monkeypatch.setattr(torch_engine, "_has_widgets", lambda: widgets)
    bar = torch_engine._progress(lp.TorchControl(verbose=True))
    assert isinstance(bar, Progress) == shown
    assert not isinstance(torch_engine._progress(lp.TorchControl(verbose=False)), Progress)


# (training alone: the networks a fit ends with are then the best epoch's, not backfitted)
SECOND_PHASE = dict(epochs=200, patience=3, seed=4, verbose=False, refine=False, lr=5e-3,
                    batch_size=50, backfit=False)
SMALL_NET = "y ~ nn(x1 + x2 + x3, hidden=(16, 8), dropout=0.0) + (1 | g)"


@pytest.mark.parametrize("options, batch2, lr2, phase", [
    ({"lr_decay": 0.1, "batch_growth": None}, 50, 5e-4, "learning rate × 0.1"),
    ({"batch_growth": 4}, 200, 5e-3, "batches of 200 rows"),
])
def test_second_phase_continues_from_the_best_epoch(monkeypatch, options, batch2, lr2, phase):
    """The run is the single-phase run until its first stall (bit for bit on CPU), then goes
    on from the best epoch, not the last, with the second phase's batches (batch_growth ×
    50 rows) and rate (lr_decay × 5e-3) until it stalls again."""
    from lmerpy.engines.train_step import TrainStep

    df = _nonlinear(1500, 15, 1)
    plain = lp.lmer(SMALL_NET, df, batch_growth=None, **SECOND_PHASE)
    at_phase = []
    real_call = TrainStep.__call__

    def call(self, batch, batch_size):
        # the second phase's first step: its batch size and rate, never seen before it
        if not at_phase and batch["rows"] == batch2 and self.opt.param_groups[0]["lr"] == lr2:
            at_phase.append([p.detach().clone() for p in self.params])
        return real_call(self, batch, batch_size)

    monkeypatch.setattr(TrainStep, "__call__", call)
    second = lp.lmer(SMALL_NET, df, **{**SECOND_PHASE, **options})
    h0, h1 = plain.history, second.history
    stall = len(h0)
    assert stall < 200 and len(h1) > stall  # the plain run stopped early; the other went on
    cols = ["train_nll", "val_nll", "sigma2", "g.(Intercept)"]
    assert np.array_equal(h1[cols].to_numpy()[:stall], h0[cols].to_numpy())
    assert (h1.lr.to_numpy()[:stall] == 5e-3).all()
    assert (h1.batch_size.to_numpy()[:stall] == 50).all()
    assert h1.lr.to_numpy()[stall:] == pytest.approx(lr2)
    assert (h1.batch_size.to_numpy()[stall:] == batch2).all()
    assert second.torch_info["best_val_nll"] <= plain.torch_info["best_val_nll"]
    assert second.torch_info["stop_reason"].endswith(
        f"(second phase after epoch {stall}: {phase})")
    # the parameters at the phase's first step are those the plain run ends with (it
    # reloads its best epoch)
    best = [p.detach() for p in (*plain.torch_info["modules"].parameters(),
                                 *plain.torch_info["covariance"].parameters())]
    assert len(at_phase) == 1 and len(at_phase[0]) == len(best)
    for got, want in zip(at_phase[0], best):
        assert torch.equal(got, want)


def test_several_random_terms_lower_the_rate_in_the_second_phase():
    """With several random terms the batches do not grow, so the default second phase
    cuts the noise by the rate instead: the run is lr_decay=1/batch_growth's, bit for bit,
    and the single-phase run until its stall."""
    df = _nonlinear(1500, 15, 1)
    df["h"] = (np.arange(len(df)) % 7).astype(str)
    formula = SMALL_NET + " + (1 | h)"
    default = lp.lmer(formula, df, **SECOND_PHASE)
    decayed = lp.lmer(formula, df, batch_growth=None, lr_decay=0.1, **SECOND_PHASE)
    single = lp.lmer(formula, df, batch_growth=None, **SECOND_PHASE)
    h, stall = default.history, len(single.history)
    assert stall < len(h) < 200
    cols = ["train_nll", "val_nll", "sigma2", "g.(Intercept)", "h.(Intercept)"]
    assert np.array_equal(h[cols].to_numpy(), decayed.history[cols].to_numpy())
    assert np.array_equal(h[cols].to_numpy()[:stall], single.history[cols].to_numpy())
    assert (h.batch_size == 50).all()
    assert h.lr.to_numpy()[stall:] == pytest.approx(5e-4)
    assert default.torch_info["stop_reason"].endswith(
        f"(second phase after epoch {stall}: learning rate × 0.1)")


def test_phase_patience_ends_the_second_phase():
    """phase_patience=8 leaves the first phase alone (its stall at patience=3, bit for bit)
    and ends the second only after 8 epochs without a new best."""
    df = _nonlinear(1500, 15, 1)
    default = lp.lmer(SMALL_NET, df, batch_growth=4, **SECOND_PHASE)
    longer = lp.lmer(SMALL_NET, df, batch_growth=4, phase_patience=8, **SECOND_PHASE)
    h0, h1 = default.history, longer.history
    first = int((h0.batch_size == 50).sum())  # the first phase's epochs
    assert first == int((h1.batch_size == 50).sum()) and len(h1) > len(h0) > first
    cols = ["train_nll", "val_nll", "sigma2", "g.(Intercept)"]
    assert np.array_equal(h1[cols].to_numpy()[:len(h0)], h0[cols].to_numpy())
    for h, patience, run in ((h0, 3, default), (h1, 8, longer)):
        best = run.torch_info["best_epoch"]
        assert len(h) - best == patience  # stopped the epoch the counter reached it
        assert (h.val_nll.to_numpy()[best:] >= h.val_nll.to_numpy()[best - 1]).all()
        assert f"for {patience} epochs (second phase" in run.torch_info["stop_reason"]


@pytest.mark.parametrize("formula, batch, growth, decay, expected", [
    ("y ~ x + (1 | g)", 100, 10, None, (1000, 1.0)),
    ("y ~ x + (1 | g)", 100, 50, None, (1350, 1350 / 5000)),  # at most the 1,350 rows;
    ("y ~ x + (1 | g)", 1000, 10, None, (1350, 0.135)),       # the rate takes the rest
    ("y ~ x + (1 | g) + (1 | h)", 100, 10, None, (100, 0.1)),  # several terms: the rate
    ("y ~ x + rbf(lat, lon)", 100, 20, None, (1000, 0.5)),   # a dense system: ≤ 1,000 rows
    ("y ~ x + rbf(lat, lon)", 50, 4, None, (200, 1.0)),
    ("y ~ x + rbf(lat, lon)", 1200, 10, None, (1200, 0.1)),  # already larger
    ("y ~ x + (1 | g)", 100, None, None, (100, 1.0)),        # no second phase
    ("y ~ x + (1 | g)", 100, 10, 0.1, (1000, 0.1)),          # lr_decay sets the rate
    ("y ~ x + (1 | g) + (1 | h)", 100, 10, 0.5, (100, 0.5)),
    ("y ~ x + (1 | g)", 100, None, 0.2, (100, 0.2)),
])
def test_second_phase_batch_size_and_rate(formula, batch, growth, decay, expected):
    from lmerpy.engines.torch_engine import TorchControl, second_phase

    d, _ = _random_model(formula, np.random.default_rng(0), 40, 1.0)
    control = TorchControl(batch_size=batch, batch_growth=growth, lr_decay=decay)
    grown, factor = second_phase(control, d, batch, 1350)
    assert grown == expected[0] and factor == pytest.approx(expected[1], rel=1e-12)


@pytest.mark.parametrize("formula, family, options, expected", [
    # backfitting at the exact θ̂ follows: it does the second phase's work
    ("y ~ nn(x) + (1 | g)", None, {}, None),
    ("y ~ nn(x) + (1 | g) + (1 | h)", None, {}, None),
    ("y ~ nn(x) + rbf(lat, lon)", None, {}, None),
    ("y ~ nn(x) + (1 | g)", None, {"backfit": True}, None),
    # one of the two missing: the second phase
    ("y ~ nn(x) + (1 | g)", None, {"refine": False}, 10),
    ("y ~ nn(x) + (1 | g)", None, {"backfit": False}, 10),
    ("y ~ nn(x) + (1 | g)", None, {"validation": 0.0}, 10),  # nothing to stop backfitting
    ("y ~ x + (1 | g)", None, {}, 10),                       # no network
    ("y ~ nn(x) + (1 | g)", "binomial", {}, 10),             # GLMMs are not backfitted
    # a second phase asked for, or the growth given
    ("y ~ nn(x) + (1 | g)", None, {"lr_decay": 0.1}, 10),
    ("y ~ nn(x) + (1 | g)", None, {"phase_patience": 20}, 10),
    ("y ~ nn(x) + (1 | g)", None, {"batch_growth": 4}, 4),
    ("y ~ nn(x) + (1 | g)", "binomial", {"batch_growth": None}, None),
])
def test_auto_batch_growth(formula, family, options, expected):
    from lmerpy.engines.family import make_family
    from lmerpy.engines.torch_control import TorchControl, check_control
    from lmerpy.engines.torch_engine import _backfits, _growth

    d, _ = _random_model(formula, np.random.default_rng(0), 40, 1.0)
    control = check_control(TorchControl(**options))
    fam = make_family(family) if family else None
    assert _growth(control, d, _backfits(control, d, fam, control.validation > 0)) == expected


def test_auto_batch_growth_above_the_spatial_limit():
    """More spatial locations than REFINE_SPATIAL_LIMIT: θ is refined on a subset of them
    and the network backfitted at that θ̂, so no second phase; with refine=False θ is kept
    as trained and the phase runs."""
    from lmerpy.engines.torch_control import TorchControl, check_control
    from lmerpy.engines.torch_engine import REFINE_SPATIAL_LIMIT, _backfits, _growth

    n = REFINE_SPATIAL_LIMIT + 1
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                         "lat": rng.uniform(size=n), "lon": rng.uniform(size=n)})
    d = lp.design("y ~ nn(x) + rbf(lat, lon)", data)
    control = check_control(TorchControl())
    assert _backfits(control, d, None, True)
    assert _growth(control, d, True) is None
    kept = check_control(TorchControl(refine=False))
    assert _growth(kept, d, True) == 10


def test_default_gaussian_fit_trains_in_one_phase():
    """By default a backfitted Gaussian fit stops at the first stall: the same run, bit for
    bit, as batch_growth=None, with one batch size and rate throughout; refine=False brings
    the second phase back."""
    df = _nonlinear(1500, 15, 1)
    options = {k: v for k, v in SECOND_PHASE.items() if k not in ("refine", "backfit")}
    default = lp.lmer(SMALL_NET, df, **options)
    single = lp.lmer(SMALL_NET, df, batch_growth=None, **options)
    cols = ["train_nll", "val_nll", "sigma2", "g.(Intercept)", "lr", "batch_size"]
    assert np.array_equal(default.history[cols].to_numpy(), single.history[cols].to_numpy())
    assert (default.history.batch_size == 50).all() and (default.history.lr == 5e-3).all()
    assert "second phase" not in default.torch_info["stop_reason"]
    assert default.torch_info["control"]["batch_growth"] is None
    assert default.torch_info["backfit"] is not None
    assert np.array_equal(default.fitted(), single.fitted())  # backfitted alike
    assert default.sigma == single.sigma
    kept = lp.lmer(SMALL_NET, df, **{**options, "refine": False})
    assert "second phase" in kept.torch_info["stop_reason"]
    assert kept.torch_info["control"]["batch_growth"] == 10


def test_networks_by_name_give_the_fitted_values():
    # m.networks: the trained modules by name= (else the term); with Xβ̂ and Zb̂ they add up
    # to the fitted values
    data = _nonlinear(400, 8, 4)
    m = lp.lmer('y ~ nn(x1 + x2, hidden=(8,), name="f") + nn(x3 + x4, hidden=(4,)) + x5 + '
                'rbf(x6, x7, name="space", lengthscale=0.7) + (1 | g)', data, seed=0,
                epochs=2, verbose=False, refine=False, backfit=False)
    assert list(m.networks) == ["f", "nn(x3 + x4, hidden = (4,))"]
    assert all(isinstance(net, torch.nn.Module) for net in m.networks.values())
    with torch.no_grad():
        nets = sum(net.eval()(torch.as_tensor(inp.X)).double().numpy().ravel()
                   for net, inp in zip(m.networks.values(), m.design.nn))
    linear = m.design.X @ m.fixef().to_numpy() + m.design.Z @ m.fit.b
    np.testing.assert_allclose(nets + linear, m.fitted().to_numpy(), atol=1e-6)
    # the torch engine starts the spatial term's lengthscale from its option
    start = CovarianceParams(m.design.random, 1.0).factors[1]
    assert float(start[1].detach().exp()) == pytest.approx(0.7)
    assert list(m.ranef()) == ["g", "space"]
    assert lp.lmer("y ~ x1 + (1 | g)", data).networks == {}


def test_training_is_the_same_with_the_mlps_written_out_pass(monkeypatch):
    # the MLP's one-node pass (networks.MLP), in training and in backfitting, changes no
    # bit of a fit
    from lmerpy.engines.networks import MLP

    data = _nonlinear(3000, 30, 5)

    def fit():
        return lp.lmer("y ~ nn(x1 + ... + x10) + (1 | g)", data, seed=0, epochs=3,
                       verbose=False, refine=False)

    fused = fit()
    monkeypatch.setattr(MLP, "_one_node_plan", lambda self, x: None)
    layered = fit()
    pd.testing.assert_frame_equal(fused.history.drop(columns="seconds"),
                                  layered.history.drop(columns="seconds"), check_exact=True)
    np.testing.assert_array_equal(fused.fitted(), layered.fitted())
    assert fused.torch_info["backfit"]["iterations"] > 0
    pd.testing.assert_frame_equal(fused.torch_info["backfit"]["history"].drop(
        columns="seconds"), layered.torch_info["backfit"]["history"].drop(columns="seconds"),
        check_exact=True)


def test_history_names_theta_as_lme4():
    """m.history's θ columns are named as lme4's ``names(getME(m, "theta"))`` (an rbf
    term's as ``<term>.sd`` and ``.lengthscale``), a repeated term's made unique as R's
    make.unique; the best epoch's row holds the θ the fit kept (refine=False)."""
    df = _nonlinear(600, 12, 3)
    rng = np.random.default_rng(0)
    df["t"] = rng.uniform(size=len(df))
    df["lat"], df["lon"] = rng.integers(0, 4, len(df)) / 4.0, rng.integers(0, 3, len(df)) / 3.0
    m = lp.lmer("y ~ nn(x1 + x2, hidden=(8,)) + (1 + t | g) + (1 | g) + rbf(lat, lon)", df,
                seed=0, epochs=4, patience=0, verbose=False, refine=False, backfit=False)
    names = ["g.(Intercept)", "g.t.(Intercept)", "g.t", "g.(Intercept).1",
             "rbf(lat, lon).sd", "rbf(lat, lon).lengthscale"]
    h = m.history
    assert list(h.columns) == ["epoch", "train_nll", "val_nll", "lr", "batch_size", "sigma2",
                               *names, "seconds"]
    best = h.loc[h.epoch == m.torch_info["best_epoch"], names].to_numpy().ravel()
    np.testing.assert_array_equal(best, m.theta)
    assert best[5] == m.VarCorr().lengthscales["rbf(lat, lon)"]
