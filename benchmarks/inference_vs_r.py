"""The tests and means of R's add-on packages side by side: lmerpy's ``emmeans``,
``joint_tests``, ``Anova`` and ``r2_nakagawa`` against emmeans, car and performance on
the same fits, in one run.

Each row times one call on a fitted model (the fit excluded; the median of three runs in
each language, lmerpy's on a fresh fit each time, so that no cached Kenward-Roger or
Satterthwaite computation is reused) and gives the largest difference between the two sets
of numbers (relative to each number's size; p-values absolutely; F ratios after rounding
to emmeans' 3 decimals).

    .venv/bin/python benchmarks/inference_vs_r.py   # writes benchmarks/RESULTS_inference.md

R needs lme4, lmerTest, pbkrtest, emmeans, car, performance and jsonlite (Debian:
r-cran-lme4 r-cran-lmertest r-cran-emmeans r-cran-car r-cran-performance r-cran-jsonlite).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import lmerpy as lp

HERE = Path(__file__).resolve().parent


def two_factor(n: int, groups: int, seed: int = 0) -> pd.DataFrame:
    """y ~ A * B + x with a random intercept: A 5 levels, B 4, ``groups`` groups."""
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"A": rng.choice([f"a{i}" for i in range(1, 6)], n),
                      "B": rng.choice([f"b{i}" for i in range(1, 5)], n),
                      "x": rng.normal(size=n).round(4),
                      "g": [f"g{i}" for i in rng.integers(0, groups, n)]})
    effect = d["A"].str[1].astype(int) * 0.2 - (d["B"] == "b2") * 0.3
    d["y"] = (1 + effect + 0.4 * d["x"] + rng.normal(size=groups)[d["g"].str[1:].astype(int)]
              + rng.normal(size=n)).round(4)
    return d


# (name, data, formula, family, the calls timed: key -> (R expression, Python callable,
#  the columns compared))
CASES = [
    ("two factors, n = 2,000 (Kenward-Roger df)", lambda: two_factor(2000, 50),
     "y ~ A * B + x + (1 | g)", "gaussian"),
    ("two factors, n = 20,000 (asymptotic df)", lambda: two_factor(20000, 200),
     "y ~ A * B + x + (1 | g)", "gaussian"),
    ("cbpp (binomial, nAGQ = 25)", lambda: lp.datasets.load("cbpp"),
     "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
]

CALLS = {
    "emmeans(~ A | B) + pairs": (
        "as.data.frame(pairs(emmeans(fit, ~ A | B)))",
        lambda m: lp.emmeans(m, "~ A | B").pairs().table, ("estimate", "SE", "p.value")),
    "joint_tests": (
        "as.data.frame(joint_tests(fit))",
        lambda m: lp.joint_tests(m).table, ("F.ratio", "p.value")),
    "car::Anova (type II χ²)": (
        "as.data.frame(Anova(fit))",
        lambda m: lp.Anova(m).table, ("Chisq", "Pr(>Chisq)")),
    "performance::r2_nakagawa": (
        "as.data.frame(r2_nakagawa(fit))",
        lambda m: pd.DataFrame({"R2_conditional": [lp.r2_nakagawa(m).conditional],
                                "R2_marginal": [lp.r2_nakagawa(m).marginal]}),
        ("R2_conditional", "R2_marginal")),
}
GLMM_CALLS = {
    "emmeans(~ period, response) + pairs": (
        "as.data.frame(pairs(emmeans(fit, ~ period), type = 'response'))",
        lambda m: lp.emmeans(m, "~ period").pairs(type="response").table,
        ("odds.ratio", "SE", "p.value")),
    "car::Anova (type II χ²)": CALLS["car::Anova (type II χ²)"],
    "performance::r2_nakagawa": CALLS["performance::r2_nakagawa"],
}

R_SCRIPT = textwrap.dedent("""
    suppressPackageStartupMessages({ library(lme4); library(emmeans); library(car)
      library(performance); library(jsonlite) })
    args <- commandArgs(TRUE)
    d <- read.csv(args[1], stringsAsFactors = TRUE)
    if ("period" %in% names(d)) d$period <- factor(d$period)
    fit <- suppressMessages(if (args[3] == "gaussian") lmer(as.formula(args[2]), data = d)
                            else glmer(as.formula(args[2]), data = d, family = args[3],
                                       nAGQ = 25))
    calls <- fromJSON(args[4])
    out <- lapply(calls, function(expr) {
      times <- numeric(3)
      for (i in 1:3) {
        t0 <- proc.time()[["elapsed"]]
        value <- suppressMessages(suppressWarnings(eval(parse(text = expr))))
        times[i] <- proc.time()[["elapsed"]] - t0
      }
      list(seconds = median(times), value = lapply(as.list(value), function(v)
        if (is.numeric(v)) v else as.character(v)))
    })
    writeLines(toJSON(out, auto_unbox = TRUE, digits = NA), args[5])
""")


def _python(call, fit):
    times, value = [], None
    for _ in range(3):
        m = fit()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = call(m)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), value


def _difference(ours: pd.DataFrame, theirs: dict, columns) -> float:
    worst = 0.0
    for column in columns:
        a = ours[column].to_numpy(dtype=float)
        b = np.array(theirs[column], dtype=float)
        if column == "F.ratio":
            a = np.round(a, 3)
        if column.startswith(("p.value", "Pr(")):
            worst = max(worst, float(np.nanmax(np.abs(a - b))))
        else:
            worst = max(worst, float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))))
    return worst


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.R"
        script.write_text(R_SCRIPT)
        for name, make, formula, family in CASES:
            data = make()

            def fit(data=data, formula=formula, family=family):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return lp.lmer(formula, data) if family == "gaussian" else \
                        lp.glmer(formula, data, family=family, nAGQ=25)
            calls = CALLS if family == "gaussian" else GLMM_CALLS
            csv, out = Path(tmp) / "d.csv", Path(tmp) / "out.json"
            data.to_csv(csv, index=False)
            subprocess.run(["Rscript", str(script), str(csv), formula, family,
                            json.dumps({k: v[0] for k, v in calls.items()}), str(out)],
                           check=True, capture_output=True)
            theirs = json.loads(out.read_text())
            for key, (_, call, columns) in calls.items():
                seconds, ours = _python(call, fit)
                r = theirs[key]
                r_seconds = r["seconds"] if isinstance(r["seconds"], float) else \
                    float(r["seconds"])
                rows.append((name, key, seconds, r_seconds, _difference(ours, r["value"],
                                                                        columns)))
                print(rows[-1], flush=True)
    lines = ["# Tests and means of R's add-on packages: lmerpy against emmeans, car and "
             "performance", "",
             "Each call timed alone on a fitted model (median of three runs in each "
             "language; lmerpy's on a fresh fit each time, nothing cached); the difference "
             "is the largest between the two sets of numbers (relative; p-values absolute; "
             "F ratios rounded to emmeans' 3 decimals first).", "",
             "| fit | call | lmerpy (s) | R (s) | R / lmerpy | largest difference |",
             "|---|---|---|---|---|---|"]
    for name, key, ours, theirs, diff in rows:
        ratio = theirs / ours if ours > 0 else float("nan")
        lines.append(f"| {name} | {key.replace('|', chr(92) + '|')} | {ours:.3f} | "
                     f"{theirs:.3f} | {ratio:.1f} | "
                     f"{diff:.1e} |")
    lines += ["", "The GLMM's rows differ by the two fits' own agreement (lmerpy's and lme4's "
              "adaptive quadrature estimates, about 2e-5); the linear ones by rounding. "
              "The Kenward-Roger rows include pbkrtest's adjusted covariance, computed "
              "afresh in both languages."]
    (HERE / "RESULTS_inference.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
