"""A spatial model: a network for the covariates and an RBF-kernel random effect over
locations; predictions at new locations are kriged from the training ones."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

import lmerpy as lp

QUICK = os.environ.get("LMERPY_QUICK") == "1"


def main() -> None:
    rng = np.random.default_rng(2)
    locations, n = (40, 800) if QUICK else (300, 10000)
    coords = rng.uniform(-10, 10, (locations, 2))
    d2 = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    K = np.exp(-d2 / (2 * 2.0**2)) + 1e-8 * np.eye(locations)
    b = np.linalg.cholesky(K) @ rng.normal(size=locations)
    loc = rng.integers(0, locations, n)
    x = rng.uniform(-1, 1, (n, 3))
    y = np.cos(2 * x[:, 0]) + x[:, 1] + b[loc] + rng.normal(scale=0.5, size=n)
    df = pd.DataFrame(x, columns=["x1", "x2", "x3"]).assign(
        y=y, lat=coords[loc, 0], lon=coords[loc, 1])
    m = lp.lmer("y ~ nn(x1 + x2 + x3, hidden=(32, 16)) + rbf(lat, lon)", df, seed=0,
                verbose=False, epochs=3 if QUICK else 50)
    print(m.VarCorr())
    new = pd.DataFrame({"x1": [0.0, 0.0], "x2": [0.0, 0.0], "x3": [0.0, 0.0],
                        "lat": [0.5, 9.0], "lon": [-3.0, 9.0]})
    print("kriged predictions at new locations:", m.predict(new).round(3).tolist())


if __name__ == "__main__":
    main()
