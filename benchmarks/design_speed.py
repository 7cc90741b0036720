"""How long design() takes on large data: 1,000,000 rows, two crossed grouping factors.

Run: .venv/bin/python benchmarks/design_speed.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

import lmerpy as lp


def main(n: int = 1_000_000) -> None:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({
        "y": rng.normal(size=n), "x": rng.normal(size=n),
        "f": pd.Categorical(rng.choice(list("abcde"), n)),
        "g": rng.integers(0, 10_000, n).astype(str), "h": rng.integers(0, 100, n),
    })
    start = time.perf_counter()
    d = lp.design("y ~ x * f + (x | g) + (1 | h)", data)
    took = time.perf_counter() - start
    print(f"design of {n:,} rows: {took:.2f} s; X {d.X.shape}, Z {d.Z.shape}, nnz {d.Z.nnz:,}")


if __name__ == "__main__":
    main()
