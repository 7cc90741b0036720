"""lmerTest's ls_means(m): least-squares (population marginal) means of the factor terms,
each a contrast t-tested on Satterthwaite's or Kenward-Roger's df, or their pairwise
differences. The reference grid crosses every level of every factor of the fixed part and
holds numeric variables at their means over the rows used (transformations of them, such
as ``I(x^2)``, computed from the mean, as R's model.matrix on the grid does); a term's
mean at a level averages the grid's rows at that level with equal weights."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..errors import ModelError
from .anova import contest
from .model import LmerResult
from .reference_grid import reference_grid
from .rformat import print_coefmat


class LsMeansTable:
    """The means (a DataFrame in ``.table``, as lmerTest's) and their printed form."""

    def __init__(self, table: pd.DataFrame, level: float, ddf: str):
        self.table, self.level, self.ddf = table, level, ddf

    def __str__(self) -> str:
        shown = self.table.assign(df=self.table["df"].round(1))
        lines = ["Least Squares Means table:", ""]
        lines += print_coefmat(shown, 5, cs=("Estimate", "Std. Error", "lower", "upper"),
                               tst=("t value",), width=80)
        lines += ["", f"  Confidence level: {100 * self.level:.2g}%",
                  f"  Degrees of freedom method: {self.ddf} "]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return "<p>Least Squares Means table</p>" + self.table.to_html()


def ls_means(m: LmerResult, which: list[str] | None = None, level: float = 0.95,
             ddf: str = "Satterthwaite", pairwise: bool = False) -> LsMeansTable:
    """The least-squares means of each factor term (``which``: some of them), or with
    ``pairwise=True`` the differences of each pair of a term's means."""
    encoder = m.design.fixed_encoder
    factor_terms = [t for t in encoder.terms.terms
                    if all(encoder.factors[f].categorical for f in t.factors)]
    names = [str(t) for t in factor_terms]
    if which is not None:
        unknown = [w for w in which if w not in names]
        if unknown:
            raise ModelError(f"ls_means(): {unknown[0]!r} is not a factor term of the model "
                             f"({', '.join(names) or 'it has none'})")
    rg = reference_grid(m)
    blocks = []
    for term in factor_terms:
        if which is not None and str(term) not in which:
            continue
        factors = [encoder.factors[f] for f in term.factors]
        L, combos = rg.cell_means([f._inner().id for f in factors])
        rows = [":".join(f"{f.label}{level}" for f, level in zip(factors, combo))
                for combo in combos]
        if pairwise:
            pairs = list(itertools.combinations(range(len(rows)), 2))
            L = np.array([L[i] - L[j] for i, j in pairs])
            rows = [f"{rows[i]} - {rows[j]}" for i, j in pairs]
        table = contest(m, L, joint=False, ddf=ddf, level=level)
        blocks.append(table.set_axis(rows))
    columns = ["Estimate", "Std. Error", "df", "t value", "lower", "upper", "Pr(>|t|)"]
    table = pd.concat(blocks) if blocks else pd.DataFrame(columns=columns)
    return LsMeansTable(table, level, ddf)


__all__ = ["LsMeansTable", "ls_means"]
