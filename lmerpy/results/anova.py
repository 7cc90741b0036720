"""anova(m0, m1, ...): likelihood-ratio tests between nested fits, and drop1()'s table of
single-term deletions, as lme4 prints them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats as st

from ..caller import caller_name
from ..engines.options import require_flag, require_probability
from ..errors import ModelError, warn
from .contrasts import type1_contrasts, type3_contrasts
from .model import LmerResult
from .rformat import print_coefmat, zapsmall


class AnovaTable:
    """The table (a DataFrame in ``.table``) and lme4's printed form (``str()``)."""

    def __init__(self, table: pd.DataFrame, formulas: dict[str, str], data_name: str):
        self.table = table
        self.formulas = formulas
        self.data_name = data_name

    def __str__(self) -> str:
        heading = [f"Data: {self.data_name}", "Models:"]
        heading += [f"{name}: {f}" for name, f in self.formulas.items()]
        return "\n".join(anova_lines(self.table, heading))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.table.to_html(na_rep="")


def anova_lines(t: pd.DataFrame, heading: list[str]) -> list[str]:
    """R's print.anova: printCoefmat(digits = 5) with no coefficient columns, the test
    statistics those named ``... value``, ``F``, ``Cp`` or ``Chisq``, every other column
    but a ``...Df`` zapsmall()ed; wide tables wrap at 80 columns, as R's print does."""
    names = [c for c in t.columns if not c.startswith("Pr(")]
    tst = tuple(c for c in names if c[1:7] == " value" or c in ("F", "Cp", "Chisq"))
    zap = tuple(c for c in names if c not in tst and not c.endswith("Df"))
    return list(heading) + print_coefmat(t, 5, tst=tst, zap=zap, width=80)


class FTable:
    """A single model's F-tests of its fixed-effect terms (a DataFrame in ``.table``) and
    their printed form: lmerTest's type III or I table, or lme4's own."""

    def __init__(self, table: pd.DataFrame, heading: str):
        self.table = table
        self.heading = heading

    def __str__(self) -> str:
        return "\n".join(anova_lines(self.table, [self.heading]))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<p>{self.heading}</p>" + self.table.to_html(na_rep="")


class StepResult:
    """lmerTest's step(m): the backward-reduced random-effect table, the fixed-effect table
    and the model found (``.model``)."""

    def __init__(self, random: pd.DataFrame, fixed: pd.DataFrame, model: LmerResult,
                 ddf: str):
        self.random, self.fixed, self.model, self.ddf = random, fixed, model, ddf

    def __str__(self) -> str:
        lines = anova_lines(self.random, ["Backward reduced random-effect table:", ""])
        lines += [""] + anova_lines(self.fixed, ["Backward reduced fixed-effect table:",
                                                 f"Degrees of freedom method: {self.ddf} ",
                                                 ""])
        return "\n".join(lines + ["", "Model found:", self.model.formula.deparsed])

    def __repr__(self) -> str:
        return str(self)


class DeletionTable:
    """drop1()'s or ranova()'s table of single-term deletions (a DataFrame in ``.table``, a
    row per term and ``<none>`` for the model) and R's printed form."""

    def __init__(self, table: pd.DataFrame, formula: str,
                 title: str = "Single term deletions", formulas: dict | None = None):
        self.table = table
        self.formula = formula
        self.title = title
        self.formulas = formulas or {}  # ranova: each row's reduced model

    def __str__(self) -> str:
        return "\n".join(anova_lines(self.table, [self.title, "", "Model:", self.formula]))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.table.to_html(na_rep="")


def anova(*models: LmerResult, names: list[str] | None = None, refit: bool = True,
          type: int | str = 3, ddf: str = "Satterthwaite") -> AnovaTable | FTable:
    """Compare fits of the same data by likelihood-ratio tests (lme4's anova.merMod).

    REML fits are refitted by ML first, as lme4 does, unless ``refit=False`` (REML fits
    that differ in their random effects only, compared by their REML criteria); models are
    ordered by their number of parameters. One model: F-tests of its fixed-effect terms,
    as lmerTest's ``anova(m)`` (``type`` 3 or 1, Satterthwaite's or Kenward-Roger's
    denominator df), or lme4's own table without p-values (``ddf="lme4"``).
    """
    if len(models) == 1 and isinstance(models[0], LmerResult):
        return single_anova(models[0], type, ddf)
    if len(models) < 2:
        raise ModelError("anova() needs at least two models")
    for i, m in enumerate(models):
        if not isinstance(m, LmerResult):
            raise ModelError(f"anova() compares fitted models; argument {i + 1} is a "
                             f"{m.__class__.__name__}")
    # as lme4 names them by the arguments' expressions: the caller's variables (else m0, m1)
    if names is None:
        found = []
        for m in models:  # a loop, not a comprehension: its frame would sit in between
            found.append(caller_name(m))
        names = found if all(found) and len(set(found)) == len(found) else \
            [f"m{i}" for i in range(len(models))]
    n = {m.nobs for m in models}
    if len(n) > 1:
        raise ModelError(f"models were not all fitted to the same number of observations "
                         f"({sorted(n)})")
    require_flag("refit", refit)
    if refit and any(m.REML for m in models):
        warn("refitting model(s) with ML (instead of REML)")
    fits = [m.refit(REML=False) for m in models] if refit else list(models)
    order = sorted(range(len(fits)), key=lambda i: fits[i].n_params)
    rows = []
    prev = None
    for i in order:
        m = fits[i]
        dev = -2.0 * float(m.logLik())  # ML, or the REML criterion with refit=False
        row = {"npar": m.n_params, "AIC": m.AIC(), "BIC": m.BIC(),
               "logLik": float(m.logLik()), "deviance": dev,
               "Chisq": np.nan, "Df": np.nan, "Pr(>Chisq)": np.nan}
        if prev is not None:
            chisq = max(prev["deviance"] - dev, 0.0)
            df = m.n_params - prev["npar"]
            row.update({"Chisq": chisq, "Df": df,
                        "Pr(>Chisq)": st.chi2.sf(chisq, df) if df > 0 else np.nan})
        rows.append(row)
        prev = row
    table = pd.DataFrame(rows, index=[names[i] for i in order])
    formulas = {names[i]: fits[i].formula.as_written for i in order}
    return AnovaTable(table, formulas, models[0].data_name)


def single_anova(m: LmerResult, type: int | str = 3, ddf: str = "Satterthwaite") -> FTable:
    """lmerTest's anova(m, type, ddf = "Satterthwaite"), or lme4's (``ddf="lme4"``)."""
    kind = {1: 1, 3: 3, "1": 1, "3": 3, "I": 1, "III": 3}.get(type)
    if kind is None:
        raise ModelError(f"type must be 3 or 1 ('III' or 'I'), not {type!r}")
    if m.family is not None and m.torch_info is None:
        ddf = "lme4"  # lmerTest's tests are for lmer fits; a glmer fit gets lme4's table
    _check_fixed_tests(m, ddf, "anova() of one model")
    fit, encoder = m.fit, m.design.fixed_encoder
    X, beta = fit.X, fit.solution.beta
    columns, terms = encoder.term_of_column, [str(t) for t in encoder.terms.terms]
    if ddf == "lme4":  # lme4's anova.merMod: sequential sums of squares (R_X β)²
        ss = (fit.solution.RX @ beta) ** 2
        rows = {t: [sum(ss[j] for j, c in enumerate(columns) if c == t),
                    columns.count(t)] for t in terms}
        table = pd.DataFrame({"npar": [r[1] for r in rows.values()],
                              "Sum Sq": [r[0] for r in rows.values()]}, index=list(rows))
        table["Mean Sq"] = table["Sum Sq"] / table["npar"]
        table["F value"] = table["Mean Sq"] / m.sigma**2  # σ = 1 for a GLMM
        return FTable(table, "Analysis of Variance Table")
    if kind == 1 or len(terms) <= 1 or X.shape[1] <= 1:  # lmerTest: one term, type I
        contrasts = type1_contrasts(X, columns, terms)
    else:
        rows_used = m._data.loc[m.design.index]
        complete, complete_names = encoder.indicator_matrix(rows_used)
        if encoder.treatment_coded:
            contrasts = type3_contrasts(X, columns, encoder.term_variables(), complete,
                                        complete_names, list(encoder.names))
        else:  # lmerTest: contrasts on X recoded by contr.treatment, mapped back to X's
            Xt, names_t = encoder.treatment_matrix(rows_used)
            on_t = type3_contrasts(Xt, columns, encoder.term_variables(), complete,
                                   complete_names, names_t)
            back = zapsmall(np.linalg.pinv(Xt) @ X, 7)
            contrasts = {t: L @ back for t, L in on_t.items()}
    roman = "III" if kind == 3 else "I"
    return FTable(f_tests(m, contrasts, ddf),
                  f"Type {roman} Analysis of Variance Table with {ddf}'s method")


def f_drop1(m: LmerResult, ddf: str = "Satterthwaite") -> DeletionTable:
    """lmerTest's drop1(m): an F-test of each marginal term (one no other term contains),
    its hypothesis the term's coefficients (sequential contrasts for a single term)."""
    _check_fixed_tests(m, ddf, "drop1(ddf=...)", lme4=False)
    encoder = m.design.fixed_encoder
    columns, terms = encoder.term_of_column, list(encoder.terms.terms)
    marginal = [str(t) for t in terms
                if not any(set(t.factors) < set(o.factors) for o in terms)]
    X = m.fit.X
    if len(terms) <= 1 or X.shape[1] <= 1:
        contrasts = type1_contrasts(X, columns, marginal)
    else:
        eye = np.eye(X.shape[1])
        contrasts = {t: eye[[j for j, c in enumerate(columns) if c == t]] for t in marginal}
    return DeletionTable(f_tests(m, contrasts, ddf), m.formula.deparsed,
                         f"Single term deletions using {ddf}'s method:")


def f_tests(m: LmerResult, contrasts: dict[str, np.ndarray], ddf: str) -> pd.DataFrame:
    """lmerTest's contestMD of each term's hypothesis: Sum Sq, Mean Sq, NumDF, DenDF,
    F value, Pr(>F) (Kenward-Roger's mean square from the unscaled F, as lmerTest)."""
    beta, V = m.fit.solution.beta, m.fit.beta_vcov()
    rows = {}
    for term, L in contrasts.items():
        if ddf == "Kenward-Roger":
            F_unscaled, F, q, den = m._kenward_roger.f_test(L, beta)
        else:
            F, q, den = m._varpar_derivatives.f_test(L, beta, V)
            F_unscaled = F
        ms = F_unscaled * m.sigma**2
        rows[term] = {"Sum Sq": ms * q, "Mean Sq": ms, "NumDF": q, "DenDF": den,
                      "F value": F, "Pr(>F)": float(st.f.sf(F, q, den)) if q else np.nan}
    return pd.DataFrame.from_dict(rows, orient="index")


def _check_fixed_tests(m: LmerResult, ddf: str, what: str, lme4: bool = True) -> None:
    allowed = ("Satterthwaite", "Kenward-Roger") + (("lme4",) if lme4 else ())
    if ddf not in allowed:
        raise ModelError(f"ddf must be {', '.join(repr(a) for a in allowed[:-1])} or "
                         f"{allowed[-1]!r}, not {ddf!r}")
    if m.torch_info is not None or (m.family is not None and ddf != "lme4"):
        raise ModelError(f"{what} tests the fixed effects of a linear mixed model fitted by "
                         f"the exact engine; compare GLMMs by anova(m0, m1)")
    if list(m.fit.fixef_names) != list(m.design.fixed_encoder.names):
        raise ModelError(f"{what} needs a fixed part of full rank (this fit dropped aliased "
                         f"columns)")


def contest(m: LmerResult, L, joint: bool = True, ddf: str = "Satterthwaite",
            level: float = 0.95) -> pd.DataFrame:
    """lmerTest's ``contest(m, L)``: the F-test of Lβ = 0 (``joint=True``), or a t-test of
    each row's ℓ'β with its confidence interval (``joint=False``), on Satterthwaite's or
    Kenward-Roger's degrees of freedom."""
    _check_fixed_tests(m, ddf, "contest()", lme4=False)
    require_flag("joint", joint)
    require_probability("level", level, "0.95")
    p = len(m.fixef_names)
    L = np.atleast_2d(np.asarray(L, dtype=np.float64))
    if L.shape[1] != p:
        raise ModelError(f"L must have {p} columns (one per fixed effect), not {L.shape[1]}")
    if joint:
        return f_tests(m, {"1": L}, ddf).set_index(pd.Index(["1"]))
    beta = m.fit.solution.beta
    if ddf == "Kenward-Roger":
        V, df = m.kenward_roger(L)
    else:
        V, df = m.fit.beta_vcov(), m.satterthwaite_df(L)
    est = L @ beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", L, V, L))
    t = st.t.ppf(0.5 + level / 2, df)
    return pd.DataFrame({"Estimate": est, "Std. Error": se, "df": df, "t value": est / se,
                         "lower": est - t * se, "upper": est + t * se,
                         "Pr(>|t|)": 2 * st.t.sf(np.abs(est / se), df)},
                        index=[str(i + 1) for i in range(len(L))])
