"""Side-by-side fits: lmerpy's exact engine against lme4, statsmodels MixedLM and GPBoost.

Each peer runs in its own process (with a time limit), on the same data, in one run; the
table gives wall times, ratios to lme4 and to the fastest peer, and every fit's criterion.

    .venv/bin/python benchmarks/exact_vs_peers.py            # all data sets
    .venv/bin/python benchmarks/exact_vs_peers.py --quick    # skip the 1,000,000-row set

Peers are optional: lme4 needs Rscript with lme4 (Debian: r-cran-lme4 r-cran-jsonlite),
statsmodels and GPBoost come from ``pip install -e '.[bench]'``. A peer that is missing or
runs past the time limit is reported as such.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import lmerpy as lp


@dataclass
class Case:
    name: str
    formula: str
    reml: bool
    groups: list[str]          # grouping columns (random intercepts for the Python peers)
    fixed: str                 # fixed part for statsmodels / GPBoost ("1" or "service")
    slope: str | None = None   # a random slope column (sleepstudy)


def simulate(n: int, q: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, q, n)
    x = rng.normal(size=n)
    b = rng.normal(scale=0.8, size=q)
    y = 1.0 + 0.5 * x + b[g] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(g.astype(str))})


def cases(quick: bool) -> list[tuple[Case, pd.DataFrame]]:
    out = [
        (Case("sleepstudy", "Reaction ~ Days + (Days | Subject)", True, ["Subject"], "Days",
              "Days"), lp.datasets.load("sleepstudy")),
        (Case("InstEval", "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", True,
              ["s", "d", "dept:service"], "service"), lp.datasets.load("InstEval")),
        (Case("sim 100k / 1k groups (ML)", "y ~ x + (1 | g)", False, ["g"], "x"),
         simulate(100_000, 1_000, 1)),
    ]
    if not quick:
        out.append((Case("sim 1M / 10k groups (ML)", "y ~ x + (1 | g)", False, ["g"], "x"),
                    simulate(1_000_000, 10_000, 2)))
    return out


def run_lmerpy(case: Case, path: Path) -> dict:
    return _python_peer("lmerpy", case, path)


PY_PEERS = {
    "lmerpy": """
        import lmerpy as lp, warnings
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        m = lp.lmer(FORMULA, data, REML=REML)
        took = time.perf_counter() - t
        crit = m.REMLcrit() if REML else m.deviance()
    """,
    "statsmodels": """
        import statsmodels.formula.api as smf, warnings
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        if len(GROUPS) == 1:
            re = f"~{SLOPE}" if SLOPE else "~1"
            model = smf.mixedlm(f"{Y} ~ {FIXED}", data, groups=data[GROUPS[0]], re_formula=re)
        else:
            data["one"] = 1
            vc = {g.replace(":", "_"): f"0 + C({g.replace(':', '_')})" for g in GROUPS}
            for g in GROUPS:
                if ":" in g:
                    a, b = g.split(":")
                    data[g.replace(":", "_")] = data[a].astype(str) + ":" + data[b].astype(str)
            model = smf.mixedlm(f"{Y} ~ {FIXED}", data, groups="one", re_formula="0",
                                vc_formula=vc)
        fit = model.fit(reml=REML)
        took = time.perf_counter() - t
        crit = -2 * fit.llf
    """,
    "GPBoost": """
        import gpboost as gpb, numpy as np, pandas as pd
        t = time.perf_counter()
        gdata = pd.DataFrame({g: (data[g.split(":")[0]].astype(str) + ":" +
                                  data[g.split(":")[1]].astype(str)) if ":" in g
                              else data[g].astype(str) for g in GROUPS})
        X = np.column_stack([np.ones(len(data))] + (
            [pd.get_dummies(data[FIXED], drop_first=True, dtype=float).to_numpy()]
            if FIXED == "service" else [data[FIXED].to_numpy(float)]))
        kwargs = {}
        if SLOPE:
            kwargs = {"group_rand_coef_data": data[SLOPE].to_numpy(float),
                      "ind_effect_group_rand_coef": [1]}
        gp = gpb.GPModel(group_data=gdata, likelihood="gaussian", **kwargs)
        gp.fit(y=data[Y].to_numpy(float), X=X)
        took = time.perf_counter() - t
        crit = 2 * gp.get_current_neg_log_likelihood()
    """,
}


def _python_peer(name: str, case: Case, path: Path, timeout: float = 900.0) -> dict:
    header = f"""
        import json, sys, time
        import pandas as pd
        data = pd.read_parquet({str(path)!r}) if {str(path)!r}.endswith(".parquet") \\
            else pd.read_pickle({str(path)!r})
        FORMULA = {case.formula!r}; REML = {case.reml!r}; GROUPS = {case.groups!r}
        FIXED = {case.fixed!r}; SLOPE = {case.slope!r}; Y = {case.formula.split('~')[0].strip()!r}
    """
    footer = """
        print(json.dumps({"time": took, "crit": float(crit)}))
    """
    code = textwrap.dedent(header) + textwrap.dedent(PY_PEERS[name]) + textwrap.dedent(footer)
    return _run([sys.executable, "-c", code], timeout)


R_SCRIPT = """
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
args <- commandArgs(TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
for (g in strsplit(args[3], ",")[[1]]) if (g %in% names(d)) d[[g]] <- factor(d[[g]])
t <- system.time(m <- suppressWarnings(lmer(as.formula(args[2]), d, REML = args[4] == "TRUE")))
crit <- if (args[4] == "TRUE") REMLcrit(m) else deviance(m)
cat(toJSON(list(time = unname(t[["elapsed"]]), crit = crit), auto_unbox = TRUE, digits = NA))
"""


def run_lme4(case: Case, csv: Path, timeout: float = 900.0) -> dict:
    if shutil.which("Rscript") is None:
        return {"error": "Rscript not found"}
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(R_SCRIPT)
    groups = ",".join(g for grp in case.groups for g in grp.split(":"))
    return _run(["Rscript", fh.name, str(csv), case.formula, groups, str(case.reml).upper()],
                timeout)


def _run(cmd: list[str], timeout: float) -> dict:
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"]
        return {"error": tail[0][:80]}
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"error": "no result"}
    result["wall"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the 1M-row data set")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--peers", default="lmerpy,lme4,statsmodels,GPBoost")
    args = parser.parse_args()
    peers = args.peers.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, data in cases(args.quick):
            pkl, csv = Path(tmp) / "data.pkl", Path(tmp) / "data.csv"
            data.to_pickle(pkl)
            data.to_csv(csv, index=False)
            results = {}
            for peer in peers:
                if peer == "lme4":
                    results[peer] = run_lme4(case, csv, args.timeout)
                else:
                    results[peer] = _python_peer(peer, case, pkl, args.timeout)
                print(f"{case.name:28s} {peer:12s} {results[peer]}", flush=True)
            rows.append((case, results))
    print()
    print("Fit times in seconds (inside each process; data loading excluded) and criteria")
    print("(REML criterion, or ML deviance = -2 logLik; GPBoost always fits by ML).")
    header = f"{'data set':28s} {'peer':12s} {'time s':>9s} {'vs lme4':>8s} {'criterion':>16s}"
    print(header)
    print("-" * len(header))
    for case, results in rows:
        base = results.get("lme4", {}).get("time")
        for peer, res in results.items():
            if "error" in res:
                print(f"{case.name:28s} {peer:12s} {res['error']}")
                continue
            ratio = f"{res['time'] / base:8.3f}" if base else f"{'-':>8s}"
            print(f"{case.name:28s} {peer:12s} {res['time']:9.3f} {ratio} {res['crit']:16.4f}")
        ours, theirs = results.get("lmerpy", {}), results.get("lme4", {})
        if "crit" in ours and "crit" in theirs:
            print(f"{'':28s} criterion lmerpy - lme4 = {ours['crit'] - theirs['crit']:+.2e}")
        fastest = min((r["time"], p) for p, r in results.items() if "time" in r and p != "lmerpy"
                      ) if any("time" in r for p, r in results.items() if p != "lmerpy") else None
        if fastest and "time" in ours:
            print(f"{'':28s} lmerpy / fastest peer ({fastest[1]}) = "
                  f"{ours['time'] / fastest[0]:.3f}")


if __name__ == "__main__":
    main()
