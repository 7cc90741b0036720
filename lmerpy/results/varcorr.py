"""VarCorr: the estimated variances, standard deviations and correlations of random effects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .rformat import format_numbers, print_matrix, r_round


@dataclass(frozen=True)
class VarCorrTerm:
    """One random term: its grouping label (lme4's, made unique), column names, covariance."""

    group: str
    names: list[str]
    cov: np.ndarray
    lengthscale: float | None = None  # an rbf() term's kernel exp(-d² / (2 ℓ²))

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    @property
    def corr(self) -> np.ndarray:
        sd = self.sd
        with np.errstate(invalid="ignore", divide="ignore"):
            c = self.cov / np.outer(sd, sd)
        c[~np.isfinite(c)] = 0.0
        np.fill_diagonal(c, 1.0)
        return c


class VarCorr:
    """lme4's VarCorr(): ``str()`` prints its table, ``to_frame()`` is as.data.frame()."""

    def __init__(self, terms: list[VarCorrTerm], sigma: float | None):
        self.terms = terms
        self.sigma = sigma

    def __getitem__(self, group: str) -> VarCorrTerm:
        for t in self.terms:
            if t.group == group:
                return t
        raise KeyError(group)

    @property
    def lengthscales(self) -> dict[str, float]:
        """The lengthscale ℓ of each spatial term's kernel exp(-‖s − s'‖² / (2ℓ²)), by group
        (lme4 has no such terms, so as.data.frame()'s layout, ``to_frame()``, leaves it out)."""
        return {t.group: t.lengthscale for t in self.terms if t.lengthscale is not None}

    def lengthscale_lines(self, digits: int = 5) -> list[str]:
        """One line per spatial term, printed under the table."""
        return [f" {group}: lengthscale {value} (kernel exp(-d^2 / (2 l^2)))"
                for group, value in zip(self.lengthscales,
                                        format_numbers(list(self.lengthscales.values()),
                                                       digits))]

    def to_frame(self) -> pd.DataFrame:
        """Columns grp, var1, var2, vcov, sdcor: variances first, then covariances."""
        rows = []
        for t in self.terms:
            for i, name in enumerate(t.names):
                rows.append((t.group, name, None, t.cov[i, i], t.sd[i]))
            p = len(t.names)
            for j in range(p):
                for i in range(j + 1, p):
                    rows.append((t.group, t.names[j], t.names[i], t.cov[i, j], t.corr[i, j]))
        if self.sigma is not None:
            rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    def format_lines(self, digits: int = 5, comp: tuple[str, ...] = ("Std.Dev.",)) -> list[str]:
        """lme4's formatVC() table, printed."""
        sds = [sd for t in self.terms for sd in t.sd]
        groups, names = [], []
        for t in self.terms:
            for i, n in enumerate(t.names):
                groups.append(t.group if i == 0 else "")
                names.append(n)
        if self.sigma is not None:
            sds.append(self.sigma)
            groups.append("Residual")
            names.append("")
        colnames = ["Groups", "Name"]
        columns = [groups, names]
        if "Variance" in comp:
            colnames.append("Variance")
            columns.append(format_numbers([s**2 for s in sds], digits))
        if "Std.Dev." in comp:
            colnames.append("Std.Dev.")
            columns.append(format_numbers(sds, digits))
        maxlen = max(len(t.names) for t in self.terms) if self.terms else 1
        if maxlen > 1:
            dig = max(2, digits - 2)
            corr_rows: list[list[str]] = []
            for t in self.terms:
                p = len(t.names)
                cc = format_numbers(r_round(t.corr, dig).ravel(), 7, nsmall=dig)
                cc = np.array(cc, dtype=object).reshape(p, p)
                for i in range(p):
                    row = [cc[i, j] if j < i else "" for j in range(p)]
                    corr_rows.append((row + [""] * (maxlen - p))[: maxlen - 1])
            while len(corr_rows) < len(groups):
                corr_rows.append([""] * (maxlen - 1))
            for j in range(maxlen - 1):
                colnames.append("Corr" if j == 0 else "")
                columns.append([r[j] for r in corr_rows])
        cells = [list(row) for row in zip(*columns)]
        return print_matrix(cells, colnames, [""] * len(cells)) + \
            self.lengthscale_lines(digits)

    def __str__(self) -> str:
        return "\n".join(self.format_lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False, na_rep="")
