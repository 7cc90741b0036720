"""car's ``Anova()`` of a mixed model: Wald tests of each fixed-effect term, type II (each
term after every other term but those containing it: its hypothesis is the part of the
term's and its relatives' coefficients conjugate, in the metric of Cov(β̂), to the
relatives' alone) or type III (the term's coefficients, as coded); χ² tests on Cov(β̂), or
F tests with Kenward and Roger's df and scaling on their adjusted covariance (REML
linear mixed models)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from ..errors import ModelError
from .anova import FTable


def wald_anova(m, type: str | int = "II", test_statistic: str = "Chisq") -> FTable:
    """car's ``Anova(m, type=, test.statistic=)``: type "II" (default) or "III" Wald χ²
    tests (``"Chisq"``), or Wald F tests with Kenward-Roger df (``"F"``)."""
    kind = {"II": 2, "III": 3, 2: 2, 3: 3, "2": 2, "3": 3}.get(type)
    if kind is None:
        raise ModelError(f"type must be 'II' or 'III' (2 or 3), not {type!r}")
    if test_statistic not in ("Chisq", "F"):
        raise ModelError(f"test_statistic must be 'Chisq' or 'F', not {test_statistic!r}")
    if m.torch_info is not None and m.design.nn:
        raise ModelError("Anova() tests coefficients; this model's nn() terms have none")
    encoder = m.design.fixed_encoder
    if list(m.fixef_names) != list(encoder.names):
        raise ModelError("Anova() needs a fixed part of full rank (this fit dropped aliased "
                         "columns)")
    beta = m.fixef().to_numpy(dtype=np.float64)
    if test_statistic == "F":
        if m.family is not None or not m.REML or m.torch_info is not None:
            raise ModelError("F tests are available only for linear mixed models fitted by "
                             "REML (car's Kenward-Roger F)")
        V = m._kenward_roger.phi_adjusted
    else:
        V = m.vcov().to_numpy(dtype=np.float64)
    columns = np.array(encoder.term_of_column, dtype=object)
    terms = [str(t) for t in encoder.terms.terms]
    variables = {str(t): {str(f) for f in t.factors} for t in encoder.terms.terms}
    eye = np.eye(len(beta))
    hypotheses = {}
    if kind == 3 and "(Intercept)" in columns:
        hypotheses["(Intercept)"] = eye[columns == "(Intercept)"]
    for term in terms:
        own = eye[columns == term]
        if kind == 2:
            relatives = [t for t in terms if t != term and variables[term] <= variables[t]]
            outer = eye[np.isin(columns, relatives)]
            if len(outer):
                own = _conjugate_complement(outer.T, np.vstack([outer, own]).T, V).T
                own = own[~np.all(own == 0, axis=1)]
        hypotheses[term] = own
    rows = {}
    for term, L in hypotheses.items():
        if test_statistic == "Chisq":
            Lb = L @ beta
            chisq = float(Lb @ np.linalg.solve(L @ V @ L.T, Lb))
            rows[term] = [chisq, len(L), float(st.chi2.sf(chisq, len(L)))]
        else:
            _, F, q, ddf = m._kenward_roger.f_test(L, beta)
            rows[term] = [F, q, ddf, float(st.f.sf(F, q, ddf))]
    names = ["Chisq", "Df", "Pr(>Chisq)"] if test_statistic == "Chisq" else \
        ["F", "Df", "Df.res", "Pr(>F)"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=names)
    roman = "II" if kind == 2 else "III"
    what = "chisquare tests" if test_statistic == "Chisq" else \
        "F tests with Kenward-Roger df"
    heading = f"Analysis of Deviance Table (Type {roman} Wald {what})\n\nResponse: " \
              f"{m.formula.response}"
    return FTable(table, heading)


def _conjugate_complement(X: np.ndarray, Z: np.ndarray, ip: np.ndarray) -> np.ndarray:
    """car's ConjComp: a basis of the part of span(Z) orthogonal to span(X) in the inner
    product ``ip`` (the span is unique, so the tests do not depend on the basis)."""
    A = Z.T @ ip @ X
    U, s, _ = np.linalg.svd(A, full_matrices=True)
    rank = int(np.sum(s > s.max() * max(A.shape) * np.finfo(float).eps)) if s.size else 0
    return Z @ U[:, rank:]


__all__ = ["wald_anova"]
