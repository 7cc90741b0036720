"""Gamma GLMMs side by side: lmerpy, glmmTMB and lme4 1.1 on the same simulated data sets, in
one run — how close each comes to the simulated parameters, how far lmerpy's fits are from
glmmTMB's (the same Laplace likelihood), and the time each takes.

Each data set: 30 subjects crossed with 20 items (600 reaction times), a two-level
condition and a number x; log μ = 6.3 + 0.12·[cond = b] + 0.2·x + subject + item, subject
sd 0.25, item sd 0.15; y ~ Gamma with shape 8 (φ = 0.125).

    .venv/bin/python benchmarks/dispersion_glmm.py [--sets 40]   # writes RESULTS_dispersion.md

R needs lme4, glmmTMB and jsonlite (Debian: r-cran-lme4 r-cran-glmmtmb r-cran-jsonlite).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

import lmerpy as lp

HERE = Path(__file__).resolve().parent
FORMULA = "rt ~ cond + x + (1 | subject) + (1 | item)"
TRUTH = {"subject sd": 0.25, "item sd": 0.15, "φ": 0.125, "condb": 0.12, "x": 0.2}


def simulate(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame([(f"s{s:02d}", f"i{i:02d}") for s in range(30) for i in range(20)],
                     columns=["subject", "item"])
    d["cond"] = rng.choice(["a", "b"], len(d))
    d["x"] = rng.uniform(-1, 1, len(d)).round(3)
    bs, bi = rng.normal(0, 0.25, 30), rng.normal(0, 0.15, 20)
    eta = (6.3 + 0.12 * (d.cond == "b") + 0.2 * d.x + bs[d.subject.str[1:].astype(int)]
           + bi[d.item.str[1:].astype(int)])
    d["rt"] = rng.gamma(8.0, np.exp(eta) / 8.0).round(2)
    return d


def fit_lmerpy(d: pd.DataFrame) -> dict:
    start = time.perf_counter()
    m = lp.glmer(FORMULA, d, family="Gamma", link="log")
    seconds = time.perf_counter() - start
    vc = m.VarCorr()
    return {"subject sd": float(vc["subject"].sd[0]), "item sd": float(vc["item"].sd[0]),
            "φ": m.dispersion, "condb": float(m.fixef()["condb"]),
            "x": float(m.fixef()["x"]), "logLik": float(m.logLik()), "seconds": seconds}


R_SCRIPT = textwrap.dedent("""
    suppressPackageStartupMessages({ library(lme4); library(glmmTMB); library(jsonlite) })
    args <- commandArgs(TRUE)
    out <- list()
    for (path in args[-1]) {
      d <- read.csv(path)
      t1 <- system.time(g <- suppressWarnings(suppressMessages(
        glmer(FORMULA, d, family = Gamma(link = "log")))))[["elapsed"]]
      t2 <- system.time(tm <- glmmTMB(FORMULA, d, family = Gamma(link = "log")))[["elapsed"]]
      vg <- as.data.frame(VarCorr(g)); vt <- VarCorr(tm)$cond
      out[[length(out) + 1]] <- list(
        lme4 = list(`subject sd` = vg$sdcor[vg$grp == "subject"],
                    `item sd` = vg$sdcor[vg$grp == "item"], `φ` = sigma(g)^2,
                    condb = fixef(g)[["condb"]], x = fixef(g)[["x"]],
                    logLik = as.numeric(logLik(g)), seconds = t1),
        glmmTMB = list(`subject sd` = attr(vt$subject, "stddev")[[1]],
                       `item sd` = attr(vt$item, "stddev")[[1]], `φ` = sigma(tm)^2,
                       condb = fixef(tm)$cond[["condb"]], x = fixef(tm)$cond[["x"]],
                       logLik = as.numeric(logLik(tm)), seconds = t2))
    }
    writeLines(toJSON(out, auto_unbox = TRUE, digits = NA), args[1])
""").replace("FORMULA", FORMULA)


def fit_r(frames: list[pd.DataFrame], tmp: Path) -> list[dict]:
    paths = []
    for k, d in enumerate(frames):
        paths.append(tmp / f"set{k}.csv")
        d.to_csv(paths[-1], index=False)
    script, out = tmp / "fit.R", tmp / "out.json"
    script.write_text(R_SCRIPT)
    subprocess.run(["Rscript", str(script), str(out), *map(str, paths)], check=True)
    return json.loads(out.read_text())


def summarise(rows: list[dict]) -> dict:
    table = pd.DataFrame(rows)
    out = {}
    for key, truth in TRUTH.items():
        est = table[key].to_numpy()
        out[key] = (est.mean(), np.sqrt(np.mean((est - truth) ** 2)))
    out["seconds"] = float(np.median(table["seconds"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", type=int, default=40)
    args = parser.parse_args()
    frames = [simulate(seed) for seed in range(args.sets)]
    ours = [fit_lmerpy(d) for d in frames]
    with tempfile.TemporaryDirectory() as tmp:
        theirs = fit_r(frames, Path(tmp))
    results = {"lmerpy": ours, "glmmTMB": [r["glmmTMB"] for r in theirs],
               "lme4 1.1": [r["lme4"] for r in theirs]}
    gap = max(abs(a["logLik"] - b["logLik"]) for a, b in zip(ours, results["glmmTMB"]))
    gap_sd = max(max(abs(a[k] - b[k]) for k in ("subject sd", "item sd", "condb", "x"))
                 for a, b in zip(ours, results["glmmTMB"]))
    lines = [f"# Gamma GLMMs: lmerpy, glmmTMB and lme4 on {args.sets} simulated data sets",
             "", f"`{FORMULA}`, log link; 600 rows per set (30 subjects × 20 items); "
             f"truth: subject sd 0.25, item sd 0.15, φ = 0.125, condb 0.12, x 0.2.", "",
             "Mean estimate (root mean squared error) over the sets; the median seconds "
             "per fit.", "",
             "| | " + " | ".join(TRUTH) + " | seconds |",
             "|---|" + "---|" * (len(TRUTH) + 1)]
    for name, rows in results.items():
        s = summarise(rows)
        cells = [f"{s[k][0]:.4f} ({s[k][1]:.4f})" for k in TRUTH]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {s['seconds']:.2f} |")
    lines += ["", f"lmerpy against glmmTMB, the largest difference over the sets: "
              f"log-likelihood {gap:.1e}, sds and coefficients {gap_sd:.1e}.", ""]
    text = "\n".join(lines)
    (HERE / "RESULTS_dispersion.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
