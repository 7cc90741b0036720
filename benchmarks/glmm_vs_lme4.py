"""Side-by-side GLMM fits: lmerpy's glmer() against lme4's glmer(), same data, one run.

Each fit runs in its own process; the table gives wall times (including the convergence
checks and standard errors both do), the ratio lmerpy / lme4, and both −2 log L.

    .venv/bin/python benchmarks/glmm_vs_lme4.py     # needs Rscript with lme4 for the peer
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

import lmerpy as lp

ROOT = Path(__file__).resolve().parents[1]

R_SCRIPT = textwrap.dedent("""
    suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
    a <- commandArgs(TRUE)
    d <- read.csv(a[1])
    for (g in strsplit(a[5], ",")[[1]]) d[[g]] <- factor(d[[g]])
    if (nchar(a[6]) > 0) for (f in strsplit(a[6], ",")[[1]]) d[[f]] <- factor(d[[f]])
    t <- system.time(m <- glmer(as.formula(a[2]), d, family = a[3], nAGQ = as.integer(a[4])))
    cat(toJSON(list(seconds = t[["elapsed"]], dev = -2 * as.numeric(logLik(m)),
                    fixef = unname(fixef(m))), digits = NA, auto_unbox = TRUE))
""")

PY_SCRIPT = textwrap.dedent("""
    import json, sys, time, warnings
    import pandas as pd
    import lmerpy as lp
    csv, formula, family, nagq, groups, factors = sys.argv[1:7]
    d = pd.read_csv(csv)
    for g in [c for c in (groups + "," + factors).split(",") if c]:
        d[g] = d[g].astype(str)
    if factors:
        for f in factors.split(","):
            d[f] = pd.Categorical(d[f], categories=sorted(d[f].unique(), key=float))
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lp.glmer(formula, d, family=family, nAGQ=int(nagq))
    sec = time.perf_counter() - t
    print(json.dumps({"seconds": sec, "dev": -2 * float(m.logLik()),
                      "fixef": m.fixef().tolist()}))
""")


def binary(n: int, q: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, q, n)
    x = rng.normal(size=n)
    eta = -0.5 + 0.7 * x + rng.normal(size=q)[g]
    return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "g": g})


def poisson_crossed(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 200, n), rng.integers(0, 50, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.4 * x + rng.normal(scale=0.5, size=200)[a] + rng.normal(scale=0.3,
                                                                           size=50)[b]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "a": a, "b": b})


CASES = [
    ("cbpp (Laplace)", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
     "binomial", 1, lambda: lp.datasets.load("cbpp"), "herd", "period"),
    ("cbpp (AGQ 25)", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
     "binomial", 25, lambda: lp.datasets.load("cbpp"), "herd", "period"),
    ("binary 100k / 1k groups", "y ~ x + (1 | g)", "binomial", 1,
     lambda: binary(100_000, 1_000, 1), "g", ""),
    ("Poisson 50k, crossed 200 x 50", "y ~ x + (1 | a) + (1 | b)", "poisson", 1,
     lambda: poisson_crossed(50_000, 2), "a,b", ""),
]


def _run(cmd: list[str]) -> dict:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": "timeout"}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        r_file = Path(tmp) / "fit.R"
        r_file.write_text(R_SCRIPT)
        py_file = Path(tmp) / "fit.py"
        py_file.write_text(PY_SCRIPT)
        for name, formula, family, nagq, make, groups, factors in CASES:
            csv = Path(tmp) / "data.csv"
            make().to_csv(csv, index=False)
            args = [str(csv), formula, family, str(nagq), groups, factors]
            ours = _run([sys.executable, str(py_file), *args])
            theirs = _run(["Rscript", str(r_file), *args]) if shutil.which("Rscript") \
                else {"error": "Rscript not found"}
            row = {"case": name, "lmerpy s": ours.get("seconds"), "lme4 s": theirs.get("seconds"),
                   "-2logLik lmerpy": ours.get("dev"), "-2logLik lme4": theirs.get("dev")}
            if row["lmerpy s"] and row["lme4 s"]:
                row["ratio"] = row["lmerpy s"] / row["lme4 s"]
            rows.append(row)
            print(row, flush=True)
    table = pd.DataFrame(rows)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for r in table.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                                       for v in r) + " |")
    out = ROOT / "benchmarks" / "RESULTS_glmm.md"
    out.write_text("# glmer: lmerpy vs lme4 (one run, same data)\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
