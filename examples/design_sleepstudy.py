"""From formula to numbers: parse an lme4 formula and look at the design lmerpy builds."""

from __future__ import annotations

import lmerpy as lp


def main() -> None:
    data = lp.datasets.load("sleepstudy")
    formula = lp.parse("Reaction ~ Days + (Days || Subject)")
    print("canonical:", formula)
    d = lp.design(formula, data)
    print("X columns:", d.X_names)
    for r in d.random:
        print(f"{r.group}: {r.q} levels, columns {r.names}, Z {r.Z.shape}")
    theta = d.theta0()
    print("Lambda(theta0) is", d.Lambda(theta).shape, "with", d.Lambda(theta).nnz, "non-zeros")


if __name__ == "__main__":
    main()
