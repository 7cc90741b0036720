"""The exact engine on spatial (rbf) models: seconds per likelihood evaluation and per ML fit
against the number of locations, with lmerpy's two factorisations side by side.

    .venv/bin/python benchmarks/spatial_exact_speed.py             # 1,000 … 10,000 locations
    .venv/bin/python benchmarks/spatial_exact_speed.py --quick     # 1,000 and 3,000
    .venv/bin/python benchmarks/spatial_exact_speed.py --fit-all   # ML fit at 10,000 too
    .venv/bin/python benchmarks/spatial_exact_speed.py --blups     # only the BLUP table

A model with one rbf term goes through KernelFactor (engines/factor.py): one Cholesky of
M = I + G^½ΣG^½ a likelihood evaluation, and the BLUPs at θ̂ through the same Cholesky.
DenseFactor, which every spatial model used before and models with other terms besides still
use, computes Λ = chol(Σ), Λ'GΛ and A's Cholesky. lme4 has no spatial terms, so the peer
here is lmerpy's general path on the same data. Data:
the paper's spatial simulation (benchmarks/paper_simulations.py), n = 80,000 rows (its
training split), σ²b0 = 1, lengthscale 1; the model y ~ x1 + rbf(lat, lon).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import lmerpy as lp
from lmerpy.engines.factor import DenseFactor
from lmerpy.engines.pls import PLS, CrossProducts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_simulations import spatial  # noqa: E402
from torch_speed import _processor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N = 80_000
FORMULA = "y ~ x1 + rbf(lat, lon)"


def _seconds(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def row(q: int, fit: bool) -> str:
    """One table row: per-evaluation seconds of both factorisations, then (``fit``) a whole
    ML fit."""
    df, *_ = spatial(N, q, 1.0, np.random.default_rng(1))
    d = lp.design(FORMULA, df)
    cp = CrossProducts.build(d.X, d.Z, d.y, None)
    kernel = PLS(d.random, cp, d.split_theta)
    general = PLS(d.random, cp, d.split_theta)
    general.factor = DenseFactor(d.random, cp.ZtZ)
    at = np.array([0.8, 1.1])
    t_kernel = min(_seconds(lambda k=k: kernel.deviance(at + k * 1e-3, False))[0]
                   for k in range(2))
    t_dense, d_dense = _seconds(lambda: general.deviance(at, False))
    gap = abs(kernel.deviance(at, False) - d_dense)
    cells = [f"{q:,}", f"{t_kernel:.2f}", f"{t_dense:.2f}", f"{t_dense / t_kernel:.1f}",
             f"{gap:.1e}"]
    if fit:
        fit_s, m = _seconds(lambda: lp.lmer(FORMULA, df, REML=False))
        cells += [f"{fit_s:.1f}", str(m.fit.optinfo["evals"]),
                  f"{m.theta[0]:.3f}, {m.theta[1]:.3f}"]
    else:
        cells += ["", "", ""]
    print(" | ".join(cells), flush=True)
    return "| " + " | ".join(cells) + " |"


def blup_row(q: int) -> str:
    """One row of the BLUP table: PLS.solve at θ with Λ (û, then b = Λû: the path every
    spatial BLUP took before) and without (KernelFactor.effects), on a fresh PLS (the factor
    built) and again for a new response at the same θ (what backfitting repeats), and the
    largest difference between the two b."""
    df, *_ = spatial(N, q, 1.0, np.random.default_rng(1))
    d = lp.design(FORMULA, df)
    cp = CrossProducts.build(d.X, d.Z, d.y, None)
    other = cp.with_response(d.X, d.Z.T.tocsr(),
                             d.y + np.random.default_rng(2).normal(size=len(d.y)))
    at = np.array([0.8, 1.1])
    times, bs = [], []
    for spherical in (True, False):
        pls = PLS(d.random, cp, d.split_theta)
        first, sol = _seconds(lambda pls=pls, s=spherical: pls.solve(at, spherical=s))
        pls.cp = other
        again = min(_seconds(lambda pls=pls, s=spherical: pls.solve(at, spherical=s))[0]
                    for _ in range(2))
        times += [first, again]
        bs.append(sol.b)
    cells = [f"{q:,}", f"{times[0]:.2f}", f"{times[1]:.3f}", f"{times[2]:.2f}",
             f"{times[3]:.4f}", f"{times[0] / times[2]:.1f}", f"{times[1] / times[3]:.1f}",
             f"{np.abs(bs[0] - bs[1]).max():.1e}"]
    print(" | ".join(cells), flush=True)
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--fit-all", action="store_true",
                        help="also the ML fit at 10,000 locations (some 10 minutes here)")
    parser.add_argument("--blups", action="store_true",
                        help="only the BLUP table, in place of the one in the results file")
    args = parser.parse_args()
    sizes = (1000, 3000) if args.quick else (1000, 3000, 5000, 10_000)
    out = ROOT / "benchmarks" / "RESULTS_spatial_exact.md"
    lines = [f"# Exact engine, spatial models ({_processor()}, {os.cpu_count()} cores)", "",
             f"n = {N:,} rows, y ~ x1 + rbf(lat, lon), ML. Seconds per evaluation of the "
             "profiled deviance through KernelFactor (one Cholesky of M = I + G^½ΣG^½) and "
             "through the general DenseFactor (chol Σ, Λ'GΛ, chol A) at the same θ, their "
             "ratio and the difference of the two deviances; then a whole ML fit (BOBYQA "
             "from lmerpy's start, with its convergence checks) with KernelFactor, up to 5,000 "
             "locations unless --fit-all: seconds, evaluations and θ̂ (σ_s/σ, lengthscale; "
             "truth 1, 1).", "",
             "| locations | KernelFactor s/eval | DenseFactor s/eval | ratio | |Δ deviance| "
             "| ML fit s | evaluations | θ̂ |",
             "|---|---|---|---|---|---|---|---|"]
    if args.blups:  # the deviance table as it stands, up to the BLUP section
        lines = out.read_text().split("\n## The BLUPs at θ")[0].rstrip("\n").split("\n")
    else:
        for q in sizes:
            lines.append(row(q, fit=q <= 5000 or args.fit_all))
    lines += ["", "## The BLUPs at θ", "",
              "Seconds of PLS.solve at θ = (0.8, 1.1): with Λ (A⁻¹Λ'Z'[X y] for û, then b = Λû; "
              "every spatial BLUP before KernelFactor.effects) and without (b = ΣG^½M⁻¹r̃ "
              "through M's Cholesky alone), first on a fresh PLS (building the factor), then "
              "for another response at the same θ (backfitting solves one per L-BFGS "
              "evaluation); the ratios, and the largest difference between the two b̂.", "",
              "| locations | with Λ: first | again | without Λ: first | again | ratio first "
              "| ratio again | max |Δb̂| |", "|---|---|---|---|---|---|---|---|"]
    blup_row(300)  # warm-up: the first solve loads what every later one reuses
    for q in sizes:
        lines.append(blup_row(q))
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
