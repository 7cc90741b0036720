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

from ..design.encoding import as_labels
from ..errors import ModelError
from ..formula import nodes as N
from .anova import contest
from .model import LmerResult
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
    grid, labels = _grid(m)
    uX = encoder.transform(grid)
    blocks = []
    for term in factor_terms:
        if which is not None and str(term) not in which:
            continue
        L, rows = _term_means(term, encoder, grid, labels, uX)
        if pairwise:
            pairs = list(itertools.combinations(range(len(rows)), 2))
            L = np.array([L[i] - L[j] for i, j in pairs])
            rows = [f"{rows[i]} - {rows[j]}" for i, j in pairs]
        table = contest(m, L, joint=False, ddf=ddf, level=level)
        blocks.append(table.set_axis(rows))
    columns = ["Estimate", "Std. Error", "df", "t value", "lower", "upper", "Pr(>|t|)"]
    table = pd.concat(blocks) if blocks else pd.DataFrame(columns=columns)
    return LsMeansTable(table, level, ddf)


def _grid(m: LmerResult) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Every combination of the factors' levels (R's expand.grid: the first fastest), the
    numeric columns at their means; and each factor's level labels by column."""
    encoder = m.design.fixed_encoder
    data = m._data.loc[m.design.index]
    levels: dict[str, list] = {}
    for f in encoder.factors.values():
        if f.categorical:
            inner = f._inner()
            if not isinstance(inner, N.Name):
                raise ModelError(f"ls_means() needs factors that are columns, not {f.label}")
            levels[inner.id] = list(f.levels)
    numeric = [c for c in m.design.formula.fixed.variables() if c not in levels]
    combos = itertools.product(*[levels[c] for c in reversed(levels)])
    grid = pd.DataFrame([dict(zip(reversed(levels), combo)) for combo in combos])
    for column in levels:  # the data's own values behind each label
        lookup = dict(zip(list(as_labels(data[column])), data[column]))
        grid[column] = grid[column].map(lookup)
    for column in numeric:
        grid[column] = float(pd.to_numeric(data[column]).mean())
    return grid, {c: list(as_labels(grid[c])) for c in levels}


def _term_means(term, encoder, grid, labels, uX) -> tuple[np.ndarray, list[str]]:
    """L's rows (the grid's average at each level combination of the term, the first
    factor fastest, as model.matrix(~ 0 + A:B)) and their names (``Aa1:Bb1``)."""
    factors = [encoder.factors[f] for f in term.factors]
    columns = [f._inner().id for f in factors]
    rows, names = [], []
    for combo in itertools.product(*[f.levels for f in reversed(factors)]):
        combo = combo[::-1]
        at = np.ones(len(grid), dtype=bool)
        for column, level in zip(columns, combo):
            at &= np.array(labels[column]) == level
        rows.append(uX[at].mean(axis=0))
        names.append(":".join(f"{f.label}{level}" for f, level in zip(factors, combo)))
    return np.array(rows), names


__all__ = ["LsMeansTable", "ls_means"]
