"""Training speed of the torch engine (LMMNN) on this machine: seconds per epoch against n
and against q, and full trainings to early stopping at the issue's reference size.

    .venv/bin/python benchmarks/torch_speed.py            # writes benchmarks/RESULTS_torch.md
    .venv/bin/python benchmarks/torch_speed.py --quick    # smaller grid
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import lmerpy as lp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_simulations import single  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def simulate(n: int, q: int, seed: int = 0) -> pd.DataFrame:
    """The paper's eq. 28 with one random intercept (benchmarks/paper_simulations.py)."""
    df, _, _, _ = single(n, q, 1.0, np.random.default_rng(seed))
    return df


def per_epoch(n: int, q: int, batch: int, epochs: int = 2) -> float:
    df = simulate(n, q)
    m = lp.lmer("y ~ nn(x1 + ... + x10) + (1 | g0)", df, epochs=epochs, patience=0,
                batch_size=batch, verbose=False, seed=0, refine=False)
    return float(m.history.seconds.median())


def full(n: int, q: int, batch: int) -> tuple[float, int]:
    df = simulate(n, q)
    t0 = time.perf_counter()
    m = lp.lmer("y ~ nn(x1 + ... + x10) + (1 | g0)", df, batch_size=batch, verbose=False,
                seed=0)
    return time.perf_counter() - t0, m.torch_info["epochs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    lines = [f"# Torch engine speed ({device})", "",
             "Paper architecture (100, 50, 25, 12), one random intercept, batching 'random'.",
             "", "## Seconds per epoch against n (q = 1,000)", "",
             "| n | batch 100 | batch 1000 |", "|---|---|---|"]
    ns = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    for n in ns:
        b100 = per_epoch(n, 1000, 100) if n <= 100_000 or not args.quick else float("nan")
        b1000 = per_epoch(n, 1000, 1000)
        lines.append(f"| {n:,} | {b100:.2f} | {b1000:.2f} |")
        print(lines[-1], flush=True)
    lines += ["", "## Seconds per epoch against q (n = 100,000, batch 1000)", "",
              "| q | seconds |", "|---|---|"]
    for q in ([100, 10_000] if args.quick else [100, 1_000, 10_000, 100_000]):
        lines.append(f"| {q:,} | {per_epoch(100_000, q, 1000):.2f} |")
        print(lines[-1], flush=True)
    lines += ["", "## To early stopping (n = 100,000, q = 1,000)", "",
              "| batch | seconds | epochs |", "|---|---|---|"]
    for batch in (100, 1000):
        sec, ep = full(100_000, 1000, batch)
        lines.append(f"| {batch} | {sec:.1f} | {ep} |")
        print(lines[-1], flush=True)
    out = ROOT / "benchmarks" / "RESULTS_torch.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
