"""The hypotheses of lmerTest's F-tests of the fixed-effect terms: one contrast matrix L per
term (rows: its hypotheses, columns: X's coefficients), from the fit's design.

Type I (sequential): the rows of the term's coefficients in the unit upper-triangular factor
of X'X (lmerTest's doolittle). Type III: lmerTest's get_contrasts_type3 for treatment-coded
factors, from the 'complete' design with indicators of every level (SAS's type III
estimable functions, Goodnight 1980): L = ginv(X) C in the complete design's coordinates, a
term's columns made orthogonal to those of every term that contains it, highest order first.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .rformat import zapsmall

_EPS = 1e-6          # lmerTest's doolittle(): smaller entries are 0
_ROW_TOL = 1e-8      # a hypothesis row with smaller entries is dropped
_DIGITS = 7          # R's zapsmall() default, as lmerTest calls it


def type1_contrasts(X: np.ndarray, columns: list[str], terms: list[str]
                    ) -> dict[str, np.ndarray]:
    """Each term's rows of t(L), X'X = L D U (lmerTest's get_contrasts_type1)."""
    p = X.shape[1]
    L = np.eye(p) if p == 1 else _doolittle(X.T @ X).T
    return {t: L[[j for j, c in enumerate(columns) if c == t]] for t in terms}


def type3_contrasts(X: np.ndarray, columns: list[str], terms: dict[str, list[tuple[str, bool]]],
                    complete: np.ndarray, complete_names: list[str], names: list[str]
                    ) -> dict[str, np.ndarray]:
    """lmerTest's extract_contrasts_type3. ``columns`` is X's term per column, ``terms`` each
    term's variables (name, categorical?), ``complete`` the indicator design with its
    column names, ``names`` X's column names."""
    L = zapsmall(np.linalg.pinv(X) @ complete, _DIGITS).T  # complete design × X's coefficients
    index = {t: [j for j, c in enumerate(columns) if c == t] for t in terms}
    contained = _containment(terms)
    order = sorted(terms, key=lambda t: len(terms[t]), reverse=True)  # stable, as R's order()
    for term in order:
        if contained[term]:
            cols = index[term]
            basis = L[:, [j for t in contained[term] for j in index[t]]]
            fit, *_ = np.linalg.lstsq(basis, L[:, cols], rcond=None)
            L[:, cols] = zapsmall(L[:, cols] - basis @ fit, _DIGITS)
    missing = [n for n in names if n not in complete_names]
    if missing:
        raise ModelError(f"type III contrasts need treatment-coded factors; no column "
                         f"{missing[0]!r} in the complete design")
    L = L[[complete_names.index(n) for n in names]]
    out = {}
    for term, cols in index.items():
        Lt = L[:, cols].T
        out[term] = Lt[np.abs(Lt).sum(axis=1) > _ROW_TOL]
    return out


def _containment(terms: dict[str, list[tuple[str, bool]]]) -> dict[str, list[str]]:
    """lmerTest's containment(): T2 contains T1 if T2 has all of T1's variables and more,
    and the same numeric ones."""
    def numeric(t):
        return {v for v, categorical in terms[t] if not categorical}

    def variables(t):
        return {v for v, _ in terms[t]}

    return {t1: [t2 for t2 in terms if variables(t1) < variables(t2)
                 and numeric(t1) == numeric(t2)] for t1 in terms}


def _doolittle(x: np.ndarray) -> np.ndarray:
    """The unit lower-triangular L of x = L U (lmerTest's doolittle, with its 1e-6 zeros)."""
    n = x.shape[0]
    L, U = np.eye(n), np.zeros((n, n))
    for i in range(n):
        U[i, :] = x[i, :] - L[i, :i] @ U[:i, :]
        for j in range(i + 1, n):
            L[j, i] = 0.0 if abs(U[i, i]) < _EPS else \
                (x[j, i] - L[j, :i] @ U[:i, i]) / U[i, i]
    L[np.abs(L) < _EPS] = 0.0
    return L


__all__ = ["type1_contrasts", "type3_contrasts"]
