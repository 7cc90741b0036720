"""Training speed of the torch engine (LMMNN) on this machine: seconds per epoch against n
and against q, and full trainings to early stopping at the issue's reference size.

    .venv/bin/python benchmarks/torch_speed.py            # writes benchmarks/RESULTS_torch.md
    .venv/bin/python benchmarks/torch_speed.py --quick    # smaller grid
    .venv/bin/python benchmarks/torch_speed.py --to-stop  # only the fits to early stopping
    .venv/bin/python benchmarks/torch_speed.py --goals    # issue 4's goals, over model seeds

On a machine with CUDA the engine trains there (device="auto") and the table goes to
benchmarks/RESULTS_torch_cuda.md; the plain-PyTorch comparison then runs on the same GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import lmerpy as lp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_simulations import longitudinal, multi, single, spatial  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def simulate(n: int, q: int, seed: int = 0) -> pd.DataFrame:
    """The paper's eq. 28 with one random intercept (benchmarks/paper_simulations.py)."""
    df, _, _, _ = single(n, q, 1.0, np.random.default_rng(seed))
    return df


def per_epoch(n: int, q: int, batch: int, epochs: int = 3, data=None, **options) -> float:
    """Median seconds per epoch (the first epoch carries one-off costs: three epochs keep it
    out of the median); ``data`` = (frame, random part), else one intercept."""
    df, random = data if data is not None else (simulate(n, q), "(1 | g0)")
    m = lp.lmer(f"y ~ nn(x1 + ... + x10) + {random}", df, epochs=epochs, patience=0,
                batch_size=batch, verbose=False, seed=0, refine=False, **options)
    return float(m.history.seconds.median())


def other_models(n: int) -> dict:
    """The paper's other random parts, simulated as in benchmarks/paper_simulations.py."""
    rng = np.random.default_rng(0)
    out = {}
    for name, (df, _, random, _) in {
            "three factors q = (1000, 2000, 3000)": multi(n, (1000, 2000, 3000), 3.0, rng),
            "longitudinal, intercept, t and t² by subject, 10,000 subjects":
                longitudinal(n, 10_000, rng, future=False),
            "spatial rbf(lat, lon), 1,000 locations": spatial(n, 1000, 1.0, rng)}.items():
        out[name] = (df, random)
    return out


def plain_torch_epoch(n: int, batch: int, epochs: int = 2, device: str = "cpu") -> float:
    """The same MLP (nn.Sequential, nn.Dropout) trained by the shortest idiomatic PyTorch loop
    with an MSE loss and no random effects: what one epoch costs in eager PyTorch here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as lmerpy trains batches of these sizes
    try:
        return _plain_epoch(n, batch, epochs, device)
    finally:  # the fits timed after it keep every thread for backfitting
        torch.set_num_threads(threads)


def _plain_epoch(n: int, batch: int, epochs: int, device: str) -> float:
    from torch import nn
    torch.manual_seed(0)
    layers, width = [], 10
    for h in (100, 50, 25, 12):
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(0.25)]
        width = h
    net = nn.Sequential(*layers, nn.Linear(width, 1)).to(device)
    x = torch.rand(n, 10, device=device) * 2 - 1
    y = torch.randn(n, device=device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    seconds = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, device=device)
        xs, ys = x[order], y[order]
        for i in range(0, n, batch):
            opt.zero_grad()
            loss = ((net(xs[i:i + batch])[:, 0] - ys[i:i + batch]) ** 2).mean()
            loss.backward()
            opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t0)
    return float(np.median(seconds))


def _processor() -> str:
    """The CPU's model name (Linux), for the table's title: timings differ between machines."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def full(n: int, q: int, batch: int, batching: str = "sorted", seed: int = 0,
         **options) -> tuple[float, int, float, float]:
    """Seconds for the whole fit, epochs, seconds in epochs, seconds backfitting (the data
    are always those of seed 0; ``seed`` is the model's)."""
    df = simulate(n, q)
    t0 = time.perf_counter()
    m = lp.lmer("y ~ nn(x1 + ... + x10) + (1 | g0)", df, batch_size=batch, verbose=False,
                seed=seed, batching=batching, **options)
    backfit = m.torch_info["backfit"]
    return (time.perf_counter() - t0, m.torch_info["epochs"], float(m.history.seconds.sum()),
            float(backfit["history"].seconds.max()) if backfit else 0.0)


def to_stop(lines: list[str], only_defaults: bool = False) -> None:
    """The whole fit at the issue's reference size, batches of 100 and 1,000;
    ``only_defaults``: the defaults, the earlier defaults (a second phase before
    backfitting) and the paper's training (one phase, no backfitting)."""
    lines += ["", "## To early stopping (n = 100,000, q = 1,000)", "",
              "The whole fit (training, exact refinement of θ, backfitting, BLUPs) with the",
              "defaults (sorted batches, training to the first stall as the paper trains, then",
              "the network backfitted by L-BFGS at θ̂); with a second phase of batches ten",
              "times larger before backfitting (batch_growth=10, the defaults until",
              "2026-12-02); without backfitting, which brings the second phase back",
              "(backfit=False); and with neither, as the paper trains (backfit=False,",
              "batch_growth=None)" + ("." if only_defaults else
              "; then with random batches (an epoch costs the same; the number of epochs to "
              "early stopping differs), and with a second phase at a tenth of the rate "
              "instead (lr_decay=0.1, batch_growth=None, backfit=False)."), "",
              "| batch | training | seconds | epochs | of which in epochs | backfitting |",
              "|---|---|---|---|---|---|"]
    for batch in (100, 1000):
        for label, batching, options in (
                ("sorted, one phase, backfitted (defaults)", "sorted", {}),
                ("sorted, second phase, backfitted", "sorted", {"batch_growth": 10}),
                ("sorted, second phase, without backfit", "sorted", {"backfit": False}),
                ("sorted, one phase, without backfit (the paper's)", "sorted",
                 {"backfit": False, "batch_growth": None}),
                ("random, one phase, backfitted", "random", {}),
                ("sorted, lr_decay=0.1, without backfit", "sorted",
                 {"lr_decay": 0.1, "batch_growth": None, "backfit": False})):
            if only_defaults and (batching == "random" or "lr_decay" in options):
                continue
            sec, ep, in_epochs, backfitting = full(100_000, 1000, batch, batching, **options)
            lines.append(f"| {batch} | {label} | {sec:.1f} | {ep} | {in_epochs:.1f} | "
                         f"{backfitting:.1f} |")
            print(lines[-1], flush=True)


def goals(seeds: int, device: str) -> list[str]:
    """Issue 4's two goals timed directly: the whole fit with the defaults (n = 100,000,
    q = 1,000, one random intercept, the paper's MLP) at batches of 1,000 (goal ≤ 20 s) and
    100 (≤ 60 s), for model seeds 0..seeds-1: the epochs to early stopping are a random
    quantity of the fit, so the median over seeds is the figure, each seed's row beside it.
    The plain-PyTorch loop is timed before each fit: the host's speed varies by the hour."""
    lines = ["| batch | seed | seconds | epochs | of which in epochs | backfitting | "
             "plain loop before (s an epoch) |", "|---|---|---|---|---|---|---|"]
    summary = []
    for batch, goal in ((1000, 20.0), (100, 60.0)):
        totals = []
        for seed in range(seeds):
            plain = plain_torch_epoch(100_000, 1000, device=device)
            sec, ep, in_epochs, backfitting = full(100_000, 1000, batch, seed=seed)
            totals.append(sec)
            lines.append(f"| {batch} | {seed} | {sec:.1f} | {ep} | {in_epochs:.1f} | "
                         f"{backfitting:.1f} | {plain:.3f} |")
            print(lines[-1], flush=True)
        median = float(np.median(totals))
        summary.append(f"- batch {batch:,}: median {median:.1f} s over seeds 0–{seeds - 1} "
                       f"(range {min(totals):.1f}–{max(totals):.1f} s); goal ≤ {goal:.0f} s: "
                       f"{'met' if median <= goal else 'not met'}")
    return lines + [""] + summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--to-stop", action="store_true",
                        help="only the fits to early stopping: the defaults, a second phase "
                             "and the paper's training (RESULTS_torch_stop.md)")
    parser.add_argument("--goals", type=int, nargs="?", const=5, metavar="SEEDS",
                        help="issue 4's two goals, the defaults' whole fit at batches of "
                             "1,000 and 100 over model seeds 0..SEEDS-1 (default 5; "
                             "RESULTS_torch_goals.md)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    where = (f"CUDA, {torch.cuda.get_device_name(0)}; torch {torch.__version__}" if cuda else
             f"{_processor()}, {os.cpu_count()} cores; torch {torch.__version__}; training "
             f"runs one thread for batches ≤ 4096")
    if args.goals:
        lines = [f"# Torch engine: issue 4's speed goals ({where})", "",
                 "The whole fit with the defaults (training to early stopping, the exact θ̂ "
                 "given the network, backfitting, BLUPs), n = 100,000, q = 1,000, one random "
                 "intercept, the paper's MLP; `benchmarks/torch_speed.py --goals`.", "",
                 *goals(args.goals, device)]
        out = ROOT / "benchmarks" / ("RESULTS_torch_goals_cuda.md" if cuda else
                                     "RESULTS_torch_goals.md")
        out.write_text("\n".join(lines) + "\n")
        print(f"wrote {out}")
        return
    if args.to_stop:
        # the host's speed varies from day to day: the shortest PyTorch loop, timed in the
        # same run, says how fast it was against RESULTS_torch.md's runs
        plain = plain_torch_epoch(100_000, 1000, device=device)
        lines = [f"# Torch engine: fits to early stopping ({where})", "",
                 f"The host's speed in this run: an epoch of the plain-PyTorch loop (n = "
                 f"100,000, batches of 1,000; RESULTS_torch.md) took {plain:.2f} s."]
        to_stop(lines, only_defaults=True)
        out = ROOT / "benchmarks" / ("RESULTS_torch_stop_cuda.md" if cuda else
                                     "RESULTS_torch_stop.md")
        out.write_text("\n".join(lines) + "\n")
        print(f"wrote {out}")
        return
    lines = [f"# Torch engine speed ({where})", "",
             "Paper architecture (100, 50, 25, 12), one random intercept, lmerpy's default batches "
             "(sorted by level).",
             "", "## Seconds per epoch against n (q = 1,000)", "",
             "Each epoch: training (90% of n) and the validation NLL (10%). 'plain torch' is the",
             "same MLP trained on all n rows by the shortest PyTorch loop with an MSE loss and no",
             "random effects — the cost of eager PyTorch itself on this machine.", "",
             "| n | batch 100 | plain torch, batch 100 | batch 1000 | plain torch, batch 1000 |",
             "|---|---|---|---|---|"]
    ns = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    for n in ns:
        b100 = per_epoch(n, 1000, 100) if n <= 100_000 or not args.quick else float("nan")
        b1000 = per_epoch(n, 1000, 1000)
        p100 = plain_torch_epoch(n, 100, device=device)
        p1000 = plain_torch_epoch(n, 1000, device=device)
        lines.append(f"| {n:,} | {b100:.2f} | {p100:.2f} | {b1000:.2f} | {p1000:.2f} |")
        print(lines[-1], flush=True)
    lines += ["", "## Seconds per epoch against q (n = 100,000, batch 1000)", "",
              "| q | seconds |", "|---|---|"]
    for q in ([100, 10_000] if args.quick else [100, 1_000, 10_000, 100_000]):
        lines.append(f"| {q:,} | {per_epoch(100_000, q, 1000):.2f} |")
        print(lines[-1], flush=True)
    if cuda:
        lines += ["", "## CUDA graphs against eager steps (n = 100,000, q = 1,000)", "",
                  "Seconds per epoch; 'eager' is the same training with cuda_graphs=False.", "",
                  "| batch | graphs | eager |", "|---|---|---|"]
        for batch in (100, 1000):
            lines.append(f"| {batch} | {per_epoch(100_000, 1000, batch, epochs=3):.2f} | "
                         f"{per_epoch(100_000, 1000, batch, epochs=3, cuda_graphs=False):.2f} |")
            print(lines[-1], flush=True)
        lines += ["", "Other random parts, batch 100 (the paper's):", "",
                  "| model | graphs | eager |", "|---|---|---|"]
        for name, data in other_models(100_000).items():
            lines.append(f"| {name} | {per_epoch(0, 0, 100, epochs=3, data=data):.2f} | "
                         f"{per_epoch(0, 0, 100, epochs=3, data=data, cuda_graphs=False):.2f} |")
            print(lines[-1], flush=True)
    to_stop(lines)
    out = ROOT / "benchmarks" / ("RESULTS_torch_cuda.md" if cuda else "RESULTS_torch.md")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
