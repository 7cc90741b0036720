"""The LMMNN paper's simulations (Simchoni & Rosset, JMLR 2023, section 4), side by side.

Data follow the paper's eq. 28: y = (x1+…+x10)·cos(x1+…+x10) + 2·x1·x2 + Zb + ε with
x ~ U(−1, 1), σ²e = 1, level sizes multinomial with Poisson(30)-based probabilities and an
80/20 random split. Every method sees the same splits:

  lmmnn       lmerpy: y ~ nn(x1 + ... + x10) + random terms (mini-batch NLL, BLUP)
  ignore      the same MLP, no random effects (MSE loss)
  embeddings  the same MLP with a 10-dimensional embedding per grouping factor (MSE loss)
  lmm         lmerpy's exact engine with a linear fixed part (ML)

Scenarios: single factor (q × σ²b grid, paper Table 1), three factors (Table 2),
longitudinal random intercept/slope/quadratic with ρ01 = ρ02 = 0.3 (Table 3, random and
"future" splits; with --full also as the paper's code draws it: measurements at periods
0, 1, 2, … per subject, t + t² in the fixed part and t among the network's inputs) and
spatial rbf(lat, lon). Test MSE and the estimated variance components
are written as a Markdown table.

    .venv/bin/python benchmarks/paper_simulations.py --quick            # minutes
    .venv/bin/python benchmarks/paper_simulations.py --n 20000          # CPU-sized
    .venv/bin/python benchmarks/paper_simulations.py --n 100000 --full  # the paper's size
    .venv/bin/python benchmarks/paper_simulations.py --glmm --n 20000   # binary, section 6
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

import lmerpy as lp
from lmerpy.engines.networks import build_network
from lmerpy.formula import parse

X_COLS = [f"x{i}" for i in range(1, 11)]


def _f(X: np.ndarray) -> np.ndarray:
    s = X.sum(1)
    return s * np.cos(s) + 2 * X[:, 0] * X[:, 1]


def _levels(rng, n: int, q: int) -> np.ndarray:
    p = rng.poisson(30, q) + 1.0
    return rng.choice(q, n, p=p / p.sum())


def single(n, q, sig2b, rng):
    X = rng.uniform(-1, 1, (n, 10))
    g = _levels(rng, n, q)
    y = _f(X) + rng.normal(scale=np.sqrt(sig2b), size=q)[g] + rng.normal(size=n)
    df = pd.DataFrame(X, columns=X_COLS)
    df["y"], df["g0"] = y, g.astype(str)
    return df, ["g0"], "(1 | g0)", None


def multi(n, qs, sig2b, rng):
    X = rng.uniform(-1, 1, (n, 10))
    df = pd.DataFrame(X, columns=X_COLS)
    y = _f(X) + rng.normal(size=n)
    for k, q in enumerate(qs):
        g = _levels(rng, n, q)
        y = y + rng.normal(scale=np.sqrt(sig2b), size=q)[g]
        df[f"g{k}"] = g.astype(str)
    df["y"] = y
    groups = [f"g{k}" for k in range(len(qs))]
    return df, groups, " + ".join(f"(1 | {g})" for g in groups), None


def longitudinal(n, subjects, rng, future: bool):
    X = rng.uniform(-1, 1, (n, 10))
    subj = _levels(rng, n, subjects)
    t = rng.uniform(0, 1, n)  # measurement times
    rho, sd = 0.3, 1.0
    C = np.array([[1, rho, rho], [rho, 1, 0], [rho, 0, 1]]) * sd**2
    b = rng.multivariate_normal(np.zeros(3), C, size=subjects)
    y = _f(X) + b[subj, 0] + b[subj, 1] * t + b[subj, 2] * t**2 + rng.normal(size=n)
    df = pd.DataFrame(X, columns=X_COLS)
    df["y"], df["t"], df["subject"] = y, t, subj.astype(str)
    split = (t > np.quantile(t, 0.8)) if future else None
    return df, ["subject"], "(1 + t + I(t^2) | subject)", split


def longitudinal_periods(n, subjects, rng, future: bool):
    """Table 3 as the paper's code simulates it (lmmnn/utils.py, mode "slopes"): subject i is
    measured at periods 0, 1, …, n_i − 1, t = period / (largest period), the fixed part gains
    t + t² and the network sees t; the future split holds out the 20% of rows with the
    largest t (ties in random order)."""
    X = rng.uniform(-1, 1, (n, 10))
    subj = _levels(rng, n, subjects)
    period = pd.Series(subj).groupby(subj).cumcount().to_numpy()
    t = period / period.max()
    rho = 0.3
    C = np.array([[1, rho, rho], [rho, 1, 0], [rho, 0, 1]])
    b = rng.multivariate_normal(np.zeros(3), C, size=subjects)
    f = _f(X) + t + t**2
    y = f + b[subj, 0] + b[subj, 1] * t + b[subj, 2] * t**2 + rng.normal(size=n)
    df = pd.DataFrame(X, columns=X_COLS)
    df["y"], df["t"], df["subject"], df["f_true"] = y, t, subj.astype(str), f
    df.attrs["inputs"] = [*X_COLS, "t"]
    df.attrs["linear"] = "x1 + ... + x10 + t + I(t^2)"
    split = None
    if future:
        split = np.zeros(n, bool)
        split[np.lexsort((rng.random(n), t))[-n // 5:]] = True
    return df, ["subject"], "(1 + t + I(t^2) | subject)", split


def spatial(n, locations, sig2b, rng, lengthscale=1.0):
    X = rng.uniform(-1, 1, (n, 10))
    coords = rng.uniform(-10, 10, (locations, 2))
    d2 = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    K = sig2b * np.exp(-d2 / (2 * lengthscale**2)) + 1e-8 * np.eye(locations)
    b = np.linalg.cholesky(K) @ rng.normal(size=locations)
    loc = _levels(rng, n, locations)
    df = pd.DataFrame(X, columns=X_COLS)
    df["y"] = _f(X) + b[loc] + rng.normal(size=n)
    df["lat"], df["lon"], df["loc"] = coords[loc, 0], coords[loc, 1], loc.astype(str)
    return df, ["loc"], "rbf(lat, lon)", None


def _train_mse(model: nn.Module, inputs, y, epochs, seed, lr=1e-3, batch=100,
               patience=10, binary: bool = False) -> nn.Module:
    """Train with MSE (or, ``binary``, cross-entropy on logits) and early stopping on a 10%
    validation split (ignore / embeddings)."""
    def lossf(out, target):
        if binary:
            return nn.functional.binary_cross_entropy_with_logits(out, target)
        return ((out - target) ** 2).mean()

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = len(y)
    perm = rng.permutation(n)
    val, tr = perm[: n // 10], perm[n // 10:]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best, state, stale = np.inf, None, 0
    for _ in range(epochs):
        model.train()
        order = rng.permutation(tr)
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            loss = lossf(model(*[x[idx] for x in inputs]), y[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            v = float(lossf(model(*[x[val] for x in inputs]), y[val]))
        if v < best:
            best, state, stale = v, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= patience:
                break
    model.load_state_dict(state)
    return model.eval()


class _MLP(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.net = build_network(parse("y ~ nn(x)").nn[0], d, None)

    def forward(self, x):
        return self.net(x)[:, 0]


class _Embedded(nn.Module):
    def __init__(self, d: int, sizes: list[int], dim: int = 10):
        super().__init__()
        self.emb = nn.ModuleList(nn.Embedding(s, dim) for s in sizes)
        self.net = build_network(parse("y ~ nn(x)").nn[0], d + dim * len(sizes), None)

    def forward(self, x, *codes):
        parts = [x] + [e(c) for e, c in zip(self.emb, codes)]
        return self.net(torch.cat(parts, dim=1))[:, 0]


# --quick: one cell of each kind at n = 20,000 (the core grid's names)
QUICK_CELLS = ("single q=1000 σ²b=1.0", "three factors q=(100,200,300) σ²b=3",
               "longitudinal 1000 subjects, random split",
               "spatial 200 locations σ²b0=1 σ²b1=1")

# lmerpy's fits: method -> its options beyond the defaults (sorted batches, as the paper's
# code trains; backfitting by L-BFGS at θ̂, after a single phase of training that stops at
# the first stall, as the paper trains). "second phase": training goes on from the best
# epoch with batches ten times larger (the default before 2026-12-02, and still where the
# network is not backfitted); "without backfit" keeps that second phase
LMMNN = {"lmmnn": {}, "lmmnn without backfit": {"backfit": False},
         "lmmnn, second phase": {"batch_growth": 10},
         "lmmnn, single phase": {"batch_growth": None},
         "lmmnn + lr decay": {"lr_decay": 0.1, "batch_growth": None},
         "lmmnn (random batches)": {"batching": "random"},
         "lmmnn (sorted batches)": {"batching": "sorted"},
         "lmmnn (group batches)": {"batching": "group"},
         # θ kept as trained (then the second phase, the network backfitted at that θ): the
         # defaults above 3,000 spatial locations before θ was refined on a subset of them
         "lmmnn, θ as trained": {"refine": False}}
OTHERS = ("ignore", "embeddings", "lmm (linear)", "true f + b̂ by lmer")
METHODS = tuple(LMMNN) + OTHERS


def run_case(name, df, groups, random, split, epochs, seed,
             methods: tuple[str, ...] = METHODS) -> list[dict]:
    # the network's inputs and the linear LMM's fixed part (a cell may add columns to x)
    inputs = df.attrs.get("inputs", X_COLS)
    linear = df.attrs.get("linear", "x1 + ... + x10")
    rng = np.random.default_rng(seed)
    test = split if split is not None else rng.random(len(df)) < 0.2
    train, new = df[~test].reset_index(drop=True), df[test].reset_index(drop=True)
    out = []

    def record(method, pred, took, extra=""):
        out.append({"scenario": name, "method": method,
                    "test MSE": float(np.mean((new.y.to_numpy() - pred) ** 2)),
                    "seconds": took, "estimates": extra})

    def label(r) -> str:
        names = [v for v in (r.var1, r.var2) if isinstance(v, str)]
        return f"{r.grp}:{'/'.join(names)}" if names else r.grp

    for method, options in LMMNN.items():
        if method not in methods:
            continue
        t0 = time.perf_counter()
        m = lp.lmer(f"y ~ nn({' + '.join(inputs)}) + {random}", train, seed=seed, epochs=epochs,
                    verbose=False, **options)
        vc = m.VarCorr().to_frame()
        est = ", ".join(f"{label(r)}={r.vcov:.3f}" for r in vc.itertuples())
        took = time.perf_counter() - t0
        record(method, m.predict(new, allow_new_levels=True).to_numpy(), took, est)
        out[-1]["sigma2e"] = m.sigma ** 2
        info = m.torch_info
        training = float(info["history"].seconds.sum())
        backfitting = float(info["backfit"]["history"].seconds.max()) if info["backfit"] \
            else 0.0
        print(f"  {name}, {method}: {took:.0f} s, of which training {training:.0f} s "
              f"({info['epochs']} epochs), backfitting {backfitting:.0f} s, the rest "
              f"(refinement, BLUPs) {took - training - backfitting:.0f} s; θ̂ "
              f"{np.array2string(m.theta, precision=4)}", flush=True)
    if not set(OTHERS) & set(methods):
        return out

    x_tr = torch.tensor(train[inputs].to_numpy(), dtype=torch.float32)
    x_te = torch.tensor(new[inputs].to_numpy(), dtype=torch.float32)
    y_tr = torch.tensor(train.y.to_numpy(), dtype=torch.float32)
    if "ignore" in methods:
        t0 = time.perf_counter()
        mlp = _train_mse(_MLP(len(inputs)), [x_tr], y_tr, epochs, seed)
        with torch.no_grad():
            record("ignore", mlp(x_te).numpy(), time.perf_counter() - t0)
    if "embeddings" in methods:
        t0 = time.perf_counter()
        emb, c_te = _embeddings(train, new, groups, x_tr, y_tr, epochs, seed)
        with torch.no_grad():
            record("embeddings", emb(x_te, *c_te).numpy(), time.perf_counter() - t0)
    if random.startswith("rbf") and train["loc"].nunique() > 2000:
        return out  # the exact engine's dense kernel solve is cubic in the locations
    if "lmm (linear)" in methods:
        t0 = time.perf_counter()
        lmm = lp.lmer(f"y ~ {linear} + {random}", train, REML=False)
        record("lmm (linear)", lmm.predict(new, allow_new_levels=True).to_numpy(),
               time.perf_counter() - t0)
    if "true f + b̂ by lmer" in methods:
        # a reference, not a competitor: the true f as an offset and b predicted by the
        # exact engine; what is left is the error of predicting b (and σ²e = 1)
        t0 = time.perf_counter()
        if "f_true" not in train:
            train, new = (d.assign(f_true=_f(d[X_COLS].to_numpy())) for d in (train, new))
        known = lp.lmer(f"y ~ 1 + offset(f_true) + {random}", train, REML=False)
        record("true f + b̂ by lmer", known.predict(new, allow_new_levels=True).to_numpy(),
               time.perf_counter() - t0)
    return out


def _embeddings(train, new, groups, x_tr, y_tr, epochs, seed, binary: bool = False):
    """The same MLP with an embedding per grouping factor (an extra index for levels unseen
    in training), trained by MSE (``binary``: cross-entropy); returns it and the test rows'
    codes."""
    sizes, c_tr, c_te = [], [], []
    for g in groups:
        levels = {v: i for i, v in enumerate(sorted(train[g].unique()))}
        sizes.append(len(levels) + 1)  # the last index: levels unseen in training
        c_tr.append(torch.tensor(train[g].map(levels).to_numpy()))
        c_te.append(torch.tensor(new[g].map(levels).fillna(len(levels)).astype(int).to_numpy()))
    return (_train_mse(_Embedded(x_tr.shape[1], sizes), [x_tr] + c_tr, y_tr, epochs, seed,
                       binary=binary), c_te)


def binary(n, q, sig2b, rng):
    """The paper's eq. 41: logit p = f(x) + b_g, y ~ Bernoulli(p); with a tuple ``q``, one
    crossed factor g0, g1, … per entry, each with variance σ²b (as eq. 28's three factors)."""
    X = rng.uniform(-1, 1, (n, 10))
    df = pd.DataFrame(X, columns=X_COLS)
    eta = _f(X)
    for k, size in enumerate(q if isinstance(q, tuple) else (q,)):
        g = _levels(rng, n, size)
        eta = eta + rng.normal(scale=np.sqrt(sig2b), size=size)[g]
        df[f"g{k}"] = g.astype(str)
    df["y"] = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    df["eta_true"] = eta  # for the oracle rows only; no method sees them
    df["f_true"] = _f(X)
    return df


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from scipy.stats import rankdata
    r = rankdata(score)
    n1 = y.sum()
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))


def run_binary_case(name, df, epochs, seed, sig2b, lmmnn_only=False, batch=1000,
                    lr=1e-3, dropout=0.25) -> list[dict]:
    """lmerpy's nn + binomial GLMM against ignore, embeddings and the exact glmer (Laplace);
    one random intercept per factor g0, g1, … in ``df``."""
    rng = np.random.default_rng(seed)
    test = rng.random(len(df)) < 0.2
    train, new = df[~test].reset_index(drop=True), df[test].reset_index(drop=True)
    groups = sorted(c for c in df.columns if c.startswith("g") and c[1:].isdigit())
    random = " + ".join(f"(1 | {g})" for g in groups)
    out = []

    def record(method, score, took, extra=""):
        out.append({"scenario": name, "method": method,
                    "test AUC": _auc(new.y.to_numpy(), score), "seconds": took,
                    "estimates": extra})

    def variances(model) -> str:
        return ", ".join(f"{v:.3f}" for v in model.VarCorr().to_frame().vcov)

    t0 = time.perf_counter()
    m = lp.glmer(f"y ~ nn(x1 + ... + x10, dropout={dropout}) + {random}", train, seed=seed,
                 epochs=epochs, batch_size=batch, lr=lr, verbose=False)
    how = "Laplace" if m.torch_info["quadrature"] == 1 else "quadrature"
    trained = ", ".join(f"{v ** 2:.3f}" for v in m.torch_info["trained_theta"])
    record("lmmnn (binomial)", m.predict(new, type="response", allow_new_levels=True)
           .to_numpy(), time.perf_counter() - t0,
           f"σ²b={variances(m)} (trained by {how}: {trained}; truth {sig2b}); "
           f"{m.torch_info['epochs']} epochs")
    record("oracle (true η)", new.eta_true.to_numpy(), 0.0, "the ceiling for any method")
    # the ceiling for a method that knows f but, like every method, must estimate b
    t0 = time.perf_counter()
    known = lp.glmer(f"y ~ 1 + offset(f_true) + {random}", train)
    record("oracle f, b̂ by glmer", known.predict(new, type="response", allow_new_levels=True)
           .to_numpy(), time.perf_counter() - t0, f"σ²b={variances(known)}")
    if lmmnn_only:
        return out

    x_tr = torch.tensor(train[X_COLS].to_numpy(), dtype=torch.float32)
    x_te = torch.tensor(new[X_COLS].to_numpy(), dtype=torch.float32)
    y_tr = torch.tensor(train.y.to_numpy(), dtype=torch.float32)
    t0 = time.perf_counter()
    mlp = _train_mse(_MLP(10), [x_tr], y_tr, epochs, seed, binary=True)
    with torch.no_grad():
        record("ignore", mlp(x_te).numpy(), time.perf_counter() - t0)
    t0 = time.perf_counter()
    emb, c_te = _embeddings(train, new, groups, x_tr, y_tr, epochs, seed, binary=True)
    with torch.no_grad():
        record("embeddings", emb(x_te, *c_te).numpy(), time.perf_counter() - t0)
    t0 = time.perf_counter()
    g = lp.glmer(f"y ~ x1 + ... + x10 + {random}", train)
    record("glmer (linear, Laplace)", g.predict(new, type="response", allow_new_levels=True)
           .to_numpy(), time.perf_counter() - t0, f"σ²b={variances(g)}")
    return out


def _write_table(rows: list[dict], header: str, path: str) -> None:
    table = pd.DataFrame(rows)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for r in table.itertuples(index=False):
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:.4f} | {r[3]:.1f} | {r[4]} |")
    Path(path).write_text(header + "\n".join(lines) + "\n")
    print(f"wrote {path}")


def main_binary(args) -> None:
    rng = np.random.default_rng(args.seed)
    qs = [100, 1000, 10000] if args.full else [100, 1000]
    sig2bs = [0.1, 1.0, 10.0] if args.full else [1.0]
    # (name, levels, --cell key); crossed factors train on the batch Laplace NLL (the
    # quadrature NLL needs one factor). Cells are generated in this order, so reproducibly
    cells = [(f"binary q={q} σ²b={s}", q, f"{q}:{s:g}") for q in qs for s in sig2bs]
    cells += [(f"binary crossed q=({a},{b}) σ²b={s}", (a, b), f"{a}+{b}:{s:g}")
              for a, b in [(1000, 200)] for s in sig2bs]
    rows = []
    for name, q, key in cells:
        s = float(name.rsplit("=", 1)[1])
        df = binary(args.n, q, s, rng)
        if args.cell and args.cell != key:
            continue
        result = run_binary_case(name, df, args.epochs, args.seed, s, args.lmmnn_only,
                                 args.batch, args.lr, args.dropout)
        for r in result:
            print(f"{r['scenario']:28s} {r['method']:24s} AUC {r['test AUC']:.4f} "
                  f"{r['seconds']:7.1f}s {r['estimates']}", flush=True)
        rows += result
    header = (f"# LMMNN binary simulations (paper eq. 41; n = {args.n:,}, epochs ≤ "
              f"{args.epochs}, seed {args.seed})\n\nTest AUC; σ̂²b of lmerpy's nn + binomial "
              f"GLMM (Laplace refinement given the network, and as trained: by 5-node "
              f"adaptive quadrature with one factor, by the batch Laplace approximation "
              f"with crossed factors) and of the linear glmer.\n\n")
    _write_table(rows, header, args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--full", action="store_true", help="all scenarios of the paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--cell", default=None,
                        help="only one cell: --glmm q:σ²b, e.g. 1000:1 (crossed: "
                             "1000+200:1); otherwise the "
                             "scenario's name, e.g. 'single q=1000 σ²b=1.0'")
    parser.add_argument("--reps", type=int, default=1,
                        help="repetitions (seeds seed, seed+1, ...): mean and SE per cell")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="Gaussian: the methods to run, comma-separated, of "
                             + ", ".join(METHODS))
    parser.add_argument("--quick", action="store_true",
                        help="a spot check in minutes: n = 20,000, four cells (one factor, "
                             "three factors, longitudinal, spatial), lmerpy's defaults and the "
                             "baselines")
    parser.add_argument("--lmmnn-only", action="store_true", help="--glmm: skip the baselines")
    parser.add_argument("--batch", type=int, default=1000, help="--glmm: lmerpy's batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="--glmm: lmerpy's learning rate")
    parser.add_argument("--dropout", type=float, default=0.25, help="--glmm: the MLP's dropout")
    parser.add_argument("--glmm", action="store_true",
                        help="the binary (GLMM) simulations of the paper's section 6")
    args = parser.parse_args()
    if args.glmm:
        args.out = args.out or "benchmarks/paper_glmm_results.md"
        main_binary(args)
        return
    cells = {args.cell} if args.cell else None
    if args.quick:
        args.n, args.full, cells = 20_000, False, cells or set(QUICK_CELLS)
        if args.methods == ",".join(METHODS):
            args.methods = ",".join(["lmmnn", *OTHERS])
        args.out = args.out or "benchmarks/paper_results_quick.md"
    args.out = args.out or "benchmarks/paper_results.md"
    methods = _methods(args.methods)
    start = time.perf_counter()
    header = (f"# LMMNN simulations (n = {args.n:,}, epochs ≤ {args.epochs}, seed {args.seed}"
              f"{f', {args.reps} repetitions' if args.reps > 1 else ''})\n\n"
              f"Test MSE (σ²e = 1; 'true f + b̂ by lmer' is the floor of a cell); lmmnn's "
              f"estimated variance components.\n\n")
    rows = []
    for rep in range(args.reps):
        for name, df, groups, random, split in _cases(args, args.seed + rep):
            if cells and name not in cells:
                continue
            result = run_case(name, df, groups, random, split, args.epochs, args.seed + rep,
                              methods)
            for r in result:
                r["rep"] = rep
                print(f"{r['scenario']:48s} {r['method']:14s} MSE {r['test MSE']:.4f} "
                      f"{r['seconds']:7.1f}s {r['estimates']}", flush=True)
            rows += result
        if args.reps > 1:  # after every repetition, so a long run keeps what it has done
            _write_summary(rows, header, args.out)
    if args.reps == 1:
        _write_table([{k: v for k, v in r.items() if k not in ("rep", "sigma2e")}
                      for r in rows], header, args.out)
    took = f"\nThe whole run took {time.perf_counter() - start:.0f} s.\n"
    with open(args.out, "a") as out:
        out.write(took)
    print(took.strip())


def _methods(text: str) -> tuple[str, ...]:
    """--methods: known names separated by commas (a name may hold a comma itself)."""
    parts, names, i = [p.strip() for p in text.split(",")], [], 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            if ", ".join(parts[i:j]) in METHODS:
                names.append(", ".join(parts[i:j]))
                i = j
                break
        else:
            raise SystemExit(f"--methods: unknown method {parts[i]!r} (known: "
                             f"{'; '.join(METHODS)})")
    return tuple(names)


def _cases(args, seed: int) -> list[tuple]:
    """The scenarios of one repetition. The core grid is generated in a fixed order from one
    generator (so a cell is reproducible whether or not the others are run); the rest of the
    paper's grid (``--full``) draws each cell from its own generator, only when selected."""
    n = args.n
    rng = np.random.default_rng(seed)
    qs = [100, 1000, 10000] if args.full else [100, 1000]
    sig2bs = [0.1, 1.0, 10.0] if args.full else [1.0]
    cases = []
    for q in qs:
        for s in sig2bs:
            cases.append((f"single q={q} σ²b={s}", *single(n, q, s, rng)))
    cases.append(("three factors q=(1000,2000,3000) σ²b=3" if args.full else
                  "three factors q=(100,200,300) σ²b=3",
                  *multi(n, (1000, 2000, 3000) if args.full else (100, 200, 300), 3.0, rng)))
    subjects = 10_000 if args.full else max(n // 20, 100)
    cases.append((f"longitudinal {subjects} subjects, random split",
                  *longitudinal(n, subjects, rng, future=False)))
    cases.append((f"longitudinal {subjects} subjects, future split",
                  *longitudinal(n, subjects, rng, future=True)))
    locations = 1000 if args.full else 200
    cases.append((f"spatial {locations} locations σ²b0=1 σ²b1=1",
                  *spatial(n, locations, 1.0, rng)))
    if not args.full:
        return cases
    # Table 2's other variance and Table 4's grid: σ²b0 is the RBF variance, σ²b1 the
    # squared lengthscale (paper eq. 31: K(s, s') = σ²b0 exp(−‖s − s'‖² / 2σ²b1)).
    extras = [("three factors q=(1000,2000,3000) σ²b=0.3",
               lambda r: multi(n, (1000, 2000, 3000), 0.3, r))]
    for future in (False, True):
        extras.append((f"longitudinal {subjects} subjects by period, "
                       f"{'future' if future else 'random'} split",
                       lambda r, future=future: longitudinal_periods(n, subjects, r, future)))
    for loc in (100, 1000, 10000):
        for s0 in (0.1, 1.0, 10.0):
            for s1 in (0.1, 1.0, 10.0):
                if (loc, s0, s1) != (1000, 1.0, 1.0):
                    extras.append((f"spatial {loc} locations σ²b0={s0:g} σ²b1={s1:g}",
                                   lambda r, loc=loc, s0=s0, s1=s1:
                                   spatial(n, loc, s0, r, lengthscale=np.sqrt(s1))))
    for k, (name, make) in enumerate(extras):
        if args.cell in (None, name):
            cases.append((name, *make(np.random.default_rng([seed, k]))))
    return cases


def _write_summary(rows: list[dict], header: str, path: str) -> None:
    """Mean and standard error over the repetitions, per scenario and method."""
    table = pd.DataFrame(rows)
    lines = ["| scenario | method | test MSE, mean (SE) | reps | seconds | σ̂²e, mean | "
             "estimates (last rep) |", "|---|---|---|---|---|---|---|"]
    if "sigma2e" not in table:
        table["sigma2e"] = np.nan
    for (scenario, method), part in table.groupby(["scenario", "method"], sort=False):
        mse = part["test MSE"]
        se = mse.std(ddof=1) / np.sqrt(len(mse)) if len(mse) > 1 else float("nan")
        s2e = f"{part.sigma2e.mean():.3f}" if part.sigma2e.notna().any() else ""
        lines.append(f"| {scenario} | {method} | {mse.mean():.4f} ({se:.4f}) | {len(mse)} | "
                     f"{part.seconds.mean():.1f} | {s2e} | {part.estimates.iloc[-1]} |")
    Path(path).write_text(header + "\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
