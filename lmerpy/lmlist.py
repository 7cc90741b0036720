"""lme4's lmList(y ~ x | g, data): an ordinary least-squares fit of ``y ~ x`` in each level of
g, the exploratory companion of a mixed model, with the residual standard error pooled
over the groups as lme4 pools it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats as st

from .caller import caller_name
from .design import design as make_design
from .engines.exact import drop_aliased
from .engines.options import require_probability
from .errors import FormulaError
from .formula import nodes as N
from .formula.parser import parse_expression
from .results.rformat import format_numbers, print_matrix


class LmList:
    """Each group's coefficients (``.coef``, NaN where a group's columns are aliased) and
    standard errors (``.se``, from the group's own fit), the residual standard error pooled
    over the groups (``.sigma``) and its degrees of freedom."""

    def __init__(self, call: str, coef: pd.DataFrame, se: pd.DataFrame, df: pd.Series,
                 sigma: float, n: int):
        self.call, self.coef, self.se, self.df, self.sigma = call, coef, se, df, sigma
        self.n, self.df_resid = n, int(df.sum())

    def confint(self, level: float = 0.95) -> dict[str, pd.DataFrame]:
        """Each coefficient's intervals by group (lme4's confint.lmList4: each group's lm
        confint, its own σ and residual df)."""
        require_probability("level", level, "0.95")
        t = st.t.ppf(0.5 + level / 2, self.df.to_numpy())
        lo, hi = f"{50 * (1 - level):g} %", f"{50 * (1 + level):g} %"
        return {c: pd.DataFrame({lo: self.coef[c] - t * self.se[c],
                                 hi: self.coef[c] + t * self.se[c]})
                for c in self.coef.columns}

    def __str__(self) -> str:
        cells = [format_numbers(self.coef[c].to_numpy(), 7) for c in self.coef.columns]
        rows = [[col[i] for col in cells] for i in range(len(self.coef))]
        lines = [f"Call: {self.call} ", "Coefficients:"]
        lines += print_matrix(rows, list(self.coef.columns), list(self.coef.index), right=True,
                              width=80)
        lines += ["", f"Degrees of freedom: {self.n} total; {self.df_resid} residual",
                  f"Residual standard error: {format_numbers([self.sigma], 7)[0]}"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def lmList(formula: str, data: pd.DataFrame, data_name: str | None = None) -> LmList:
    """OLS of the formula's ``y ~ x`` part in each level of the grouping factor after
    ``|`` (an interaction ``a:b`` too), in lme4's level order."""
    lhs, rhs, _ = parse_expression(formula)
    if not (isinstance(rhs, N.BinOp) and rhs.op == "|"):
        raise FormulaError("lmList() needs a formula 'y ~ x | g' (the model, a bar, the "
                           "grouping factor)", None, formula)
    data_name = data_name or caller_name(data) or "data"
    # the grouping factor as a random term: its levels in lme4's order, and rows with a
    # missing value anywhere dropped together
    d = make_design(f"{lhs} ~ {rhs.left} + (1 | {rhs.right})", data)
    codes, levels = d.random[0].codes, list(d.random[0].levels)
    X, y, names = d.X, np.asarray(d.y, dtype=np.float64), list(d.X_names)
    coef = np.full((len(levels), len(names)), np.nan)
    se = np.full_like(coef, np.nan)
    rss, df = np.zeros(len(levels)), np.zeros(len(levels), dtype=int)
    for k in range(len(levels)):
        at = codes == k
        Xk, kept, _ = drop_aliased(X[at], names)
        beta, *_ = np.linalg.lstsq(Xk, y[at], rcond=None)
        cols = [names.index(c) for c in kept]
        coef[k, cols] = beta
        rss[k] = float(np.sum((y[at] - Xk @ beta) ** 2))
        df[k] = int(at.sum()) - len(kept)
        if df[k] > 0:
            se[k, cols] = np.sqrt(rss[k] / df[k] * np.diag(np.linalg.pinv(Xk.T @ Xk)))
    sigma = float(np.sqrt(rss.sum() / df.sum())) if df.sum() > 0 else float("nan")
    call = f"lmList(formula = {lhs} ~ {rhs}, data = {data_name})"
    return LmList(call, pd.DataFrame(coef, index=levels, columns=names),
                  pd.DataFrame(se, index=levels, columns=names),
                  pd.Series(df, index=levels, name="df"), sigma, d.n)


__all__ = ["LmList", "lmList"]
