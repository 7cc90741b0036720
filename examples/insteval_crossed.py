"""InstEval: crossed random effects for students, lecturers and departments (lme4's own
large example, 73,421 ratings)."""

from __future__ import annotations

import os
import time

import lmerpy as lp

QUICK = os.environ.get("LMERPY_QUICK") == "1"


def main() -> None:
    data = lp.datasets.load("InstEval")
    if QUICK:
        data = data.iloc[:15000]
    t0 = time.perf_counter()
    m = lp.lmer("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", data, REML=False)
    print(m.summary())
    print(f"fitted {m.nobs} ratings, groups {m.ngrps}, in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
