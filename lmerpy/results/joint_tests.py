"""emmeans' ``joint_tests(m)``: an F test of every model term's effect on the estimated
marginal means — the interaction contrasts (consecutive differences in each of the term's
variables) of the term's means, tested jointly, on the reference grid with each numeric
variable at its mean ± 1 (emmeans' ``meanint``). For a full-rank model these are type III
tests whatever the factors' coding."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats as st

from ..errors import ModelError
from ..formula import nodes as N
from .emm_print import summary_lines
from .emmeans import EmmGrid, by_groups, make_basis
from .reference_grid import reference_grid


class JointTests:
    """The table (``.table``: model term, df1, df2, F.ratio, p.value, and the ``by``
    variables) and its emmeans print."""

    def __init__(self, table: pd.DataFrame, by: list[str]):
        self.table, self.by = table, by

    def __str__(self) -> str:
        return "\n".join(summary_lines(self.table, "F.ratio", self.by, [], set()))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False)


def joint_tests(m, by: list[str] | str | None = None, lmer_df: str | None = None
                ) -> JointTests:
    """emmeans' joint_tests(m, by=): one F test per model term (within each ``by``
    group), with the degrees of freedom emmeans would use (Kenward-Roger's for small
    linear mixed models, ``lmer_df`` to choose; ∞ for GLMMs)."""
    by = [by] if isinstance(by, str) else list(by or [])
    variables = list(m.design.formula.fixed.variables())
    factors = {f._inner().id for f in m.design.fixed_encoder.factors.values()
               if f.categorical and isinstance(f._inner(), N.Name)}
    data = m._data.loc[m.design.index]
    at = {v: [float(pd.to_numeric(data[v]).mean()) + d for d in (-1.0, 1.0)]
          for v in variables if v not in factors}
    unknown = [b for b in by if b not in variables]
    if unknown:
        raise ModelError(f"by: {unknown[0]!r} is not a variable of the fixed part")
    rg = reference_grid(m, at)
    basis = make_basis(m, rg, variables, lmer_df)
    if basis.kept is not None:
        raise ModelError("joint_tests() needs a fixed part of full rank (this fit dropped "
                         "aliased columns)")
    terms = [{n for f in t.factors for n in N.names_in(f)}
             for t in m.design.fixed_encoder.terms.terms]
    tested = [v for v in variables if v not in by]
    rows = []
    for k in range(1, len(tested) + 1):
        for these in itertools.combinations(tested, k):
            if not any(set(these) <= t for t in terms):
                continue
            names = list(these) + by
            L, combos = rg.cell_means(names)
            means = EmmGrid(basis, pd.DataFrame(combos, columns=names), L,
                            np.zeros(len(L)), list(these), by, set())
            contrasts = means.contrast(interaction="consec")
            for group in by_groups(contrasts.levels, by):
                F, df1, df2 = basis.f_test(contrasts.L[group])
                row = {"model term": ":".join(these), "df1": df1, "df2": df2,
                       "F.ratio": F,
                       "p.value": float(st.f.sf(F, df1, df2)) if np.isfinite(df2)
                       else float(st.chi2.sf(F * df1, df1))}
                row.update({b: contrasts.levels[b].iloc[group[0]] for b in by})
                rows.append(row)
    table = pd.DataFrame(rows, columns=["model term"] + by + ["df1", "df2", "F.ratio",
                                                              "p.value"])
    return JointTests(table, by)


__all__ = ["JointTests", "joint_tests"]
