"""The LMMNN paper's simulation (eq. 28): a non-linear f(X) and a random intercept. The
network with random effects against the same data fitted by a linear mixed model."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

import lmerpy as lp

QUICK = os.environ.get("LMERPY_QUICK") == "1"


def simulate(n: int, q: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 10))
    s = X.sum(1)
    g = rng.integers(0, q, n)
    y = s * np.cos(s) + 2 * X[:, 0] * X[:, 1] + rng.normal(size=q)[g] + rng.normal(size=n)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(1, 11)])
    return df.assign(y=y, g=g.astype(str))


def main() -> None:
    df = simulate(2000 if QUICK else 20000, 50 if QUICK else 500)
    train, test = df.iloc[: int(0.8 * len(df))], df.iloc[int(0.8 * len(df)):]
    m = lp.lmer("y ~ nn(x1 + ... + x10) + (1 | g)", train, seed=0, verbose=False,
                epochs=3 if QUICK else 100)
    lin = lp.lmer("y ~ x1 + ... + x10 + (1 | g)", train, REML=False)
    for name, model in (("LMMNN", m), ("linear LMM", lin)):
        pred = model.predict(test, allow_new_levels=True)
        print(f"{name:11s} test MSE {np.mean((test.y - pred) ** 2):.3f}")
    print(m.summary())


if __name__ == "__main__":
    main()
