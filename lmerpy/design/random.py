"""Random-effect terms on data: grouping levels, the sparse Z_k and the covariance spec."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError, warn
from ..formula.terms import RandomTerm, RBFTerm
from .covariance import CovarianceSpec, RBFKernel, Unstructured
from .encoding import MatrixEncoder, as_labels, level_order
from .evaluate import check_column_type, numeric_column


@dataclass
class RandomTermDesign:
    """One random term after lme4's expansions, evaluated on the training rows.

    Z has lme4's column order: levels outer, term columns inner (column ``l·p + j`` holds
    term column j for level l).
    """

    term: RandomTerm | RBFTerm
    group: str
    levels: list[str]
    codes: np.ndarray              # level index of every row
    X: np.ndarray                  # n × p term columns
    names: list[str]               # term column names, e.g. ["(Intercept)", "Days"]
    cov: CovarianceSpec
    encoder: MatrixEncoder | None = field(default=None, repr=False)
    Z: sp.csc_matrix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.Z = build_Z(self.codes, self.X, len(self.levels))

    @property
    def q(self) -> int:
        """Number of levels (locations for rbf)."""
        return len(self.levels)

    @property
    def p(self) -> int:
        """Number of effects per level."""
        return self.X.shape[1]

    @property
    def n_columns(self) -> int:
        return self.q * self.p

    def Lambda(self, theta: np.ndarray) -> sp.csc_matrix:
        return self.cov.Lambda(theta, self.q)

    def theta_names(self) -> list[str]:
        return self.cov.theta_names(self.names)


def build_Z(codes: np.ndarray, X: np.ndarray, q: int) -> sp.csc_matrix:
    """Z_k (n × q·p) from level codes and term columns; rows with code -1 stay empty."""
    n, p = X.shape
    keep = codes >= 0
    rows = np.repeat(np.arange(n)[keep], p)
    cols = (codes[keep][:, None] * p + np.arange(p)[None, :]).ravel()
    vals = X[keep].ravel()
    Z = sp.csc_matrix((vals, (rows, cols)), shape=(n, q * p))
    Z.eliminate_zeros()  # lme4 stores no explicit zeros (e.g. Days = 0)
    return Z


def factor_codes(series: pd.Series, levels: list[str] | None = None
                 ) -> tuple[np.ndarray, list[str]]:
    """Codes of a factor's values in ``levels`` (R order if not given); unseen values -> -1."""
    if levels is None:
        levels = level_order(series)
    inverse, uniques = pd.factorize(series, use_na_sentinel=True)
    lookup = {lvl: i for i, lvl in enumerate(levels)}
    mapped = np.array([lookup.get(v, -1) for v in as_labels(np.asarray(uniques, dtype=object))]
                      + [-1], dtype=np.int64)
    return mapped[inverse], levels


def grouping_codes(data: pd.DataFrame, group: tuple[str, ...],
                   levels: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Level codes of a grouping factor (``a:b`` = interaction, first factor outermost).

    Training data (``levels=None``): R's ``a:b`` levels with unused ones dropped, as lme4.
    New data: codes in the training ``levels``; unseen levels get -1.
    """
    for g in group:
        check_column_type(data[g], g)
    per = [factor_codes(data[g]) for g in group]
    if len(group) == 1 and levels is None:
        return per[0]
    # Mixed radix with the first factor outermost: the order of R's interaction levels.
    combined = np.zeros(len(data), dtype=np.int64)
    missing = np.zeros(len(data), dtype=bool)
    for codes, lv in per:
        combined = combined * len(lv) + np.maximum(codes, 0)
        missing |= codes < 0
    present = np.unique(combined[~missing])
    digits = []
    rest = present.copy()
    for _, lv in reversed(per):
        digits.append(rest % len(lv))
        rest = rest // len(lv)
    digits.reverse()
    labels = [":".join(lv[d[i]] for (_, lv), d in zip(per, digits)) for i in range(len(present))]
    codes = np.searchsorted(present, combined)
    codes[missing] = -1
    if levels is None:
        return codes.astype(np.int64), labels
    # New data: translate the codes of its own levels into the training levels.
    lookup = {lvl: i for i, lvl in enumerate(levels)}
    translate = np.array([lookup.get(lbl, -1) for lbl in labels] + [-1], dtype=np.int64)
    codes = np.where(missing, len(labels), codes)
    return translate[codes], levels


def random_design(term: RandomTerm, data: pd.DataFrame) -> RandomTermDesign:
    for g in term.group:
        series = data[g]
        if pd.api.types.is_float_dtype(series) and not isinstance(series.dtype,
                                                                   pd.CategoricalDtype):
            warn(f"grouping column '{g}' holds floats; its distinct values are used "
                 f"as levels")
    codes, levels = grouping_codes(data, term.group)
    encoder = MatrixEncoder(term.expr, what=f"random term {term}")
    X = encoder.fit(data)
    if X.shape[1] == 0:
        raise DataError(f"random term {term} has no columns")
    return RandomTermDesign(term, term.group_name, levels, codes, X, encoder.names,
                            Unstructured(X.shape[1]), encoder)


def rbf_design(term: RBFTerm, data: pd.DataFrame) -> RandomTermDesign:
    """A spatial term: one effect per unique coordinate tuple, an RBF kernel between them."""
    coords = np.column_stack([numeric_column(data, c, str(term)) for c in term.coords])
    unique, codes = np.unique(coords, axis=0, return_inverse=True)
    levels = [", ".join(f"{v:.10g}" for v in row) for row in unique]
    X = np.ones((len(data), 1))
    start = term.option("lengthscale")  # checked by the parser: a positive number
    spec = RBFKernel(unique, lengthscale0=None if start is None else float(start))
    return RandomTermDesign(term, term.group_name, levels, codes.ravel().astype(np.int64), X,
                            ["(Intercept)"], spec)
