"""Multiplicity adjustments of p-values and confidence levels for families of contrasts, as
emmeans applies them (its .adj.p.value and .adj.critval): Tukey's studentized range for one
set of pairwise comparisons (``results/tukey.py``), Dunnett's (emmeans' "dunnettx"
approximation) for comparisons with a control, Scheffé's, Šidák's, the multivariate t
("mvt": the joint distribution of the family's t ratios, by Genz and Bretz's quasi-Monte
Carlo integration, as mvtnorm's), and R's p.adjust methods."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as st

from ..errors import ModelError
from .tukey import ptukey, qtukey

P_ADJUST = ("holm", "hochberg", "bonferroni", "BH", "BY", "fdr", "none")
METHODS = ("tukey", "scheffe", "sidak", "dunnettx", "mvt") + P_ADJUST
MVT_EPS = 1e-5  # the normal integration's absolute error (mvtnorm's default is 1e-3)
MVT_POINTS = 20_000  # quasi-Monte Carlo points per dimension (a fixed seed: repeatable)


@dataclass(frozen=True)
class Family:
    """One family of contrasts: the means compared (``size``), the contrasts (``n``),
    whether they are one set of pairwise differences (Tukey's case), their rank
    (Scheffé's) and the correlation of their estimates (the multivariate t's)."""

    size: int
    n: int
    pairs: bool
    rank: int
    corr: np.ndarray | None = None


def resolve(adjust: str, family: Family) -> str:
    """The method emmeans applies: none for a single contrast; Tukey's only for pairwise
    differences (else Šidák's, with emmeans' note)."""
    if adjust not in METHODS:
        raise ModelError(f"adjust must be one of {', '.join(METHODS)}, not {adjust!r}")
    if family.n == 1 and adjust != "scheffe":
        return "none"
    if adjust == "tukey" and not family.pairs:
        warnings.warn('adjust = "tukey" was changed to "sidak" because "tukey" is only '
                      'appropriate for one set of pairwise comparisons', UserWarning,
                      stacklevel=3)
        return "sidak"
    return adjust


def adjusted_p(t: np.ndarray, df: np.ndarray, adjust: str, family: Family) -> np.ndarray:
    """Two-sided p-values of the t (or z, df = ∞) ratios of one family, adjusted (NaN for
    the contrasts that are not estimable, which still count in the family)."""
    t, df = np.asarray(t, dtype=np.float64), np.asarray(df, dtype=np.float64)
    ok = np.isfinite(t)
    out = np.full(len(t), np.nan)
    if ok.any():
        out[ok] = _adjusted_p(t[ok], df[ok], adjust, family)
    return out


def _adjusted_p(t: np.ndarray, df: np.ndarray, adjust: str, family: Family) -> np.ndarray:
    p = 2 * st.t.sf(np.abs(t), df)
    if adjust in P_ADJUST:
        return p_adjust(p, adjust, family.n)
    if adjust == "sidak":
        return 1 - (1 - p) ** family.n
    if adjust == "tukey":
        return 1 - ptukey(math.sqrt(2) * np.abs(t), family.size, df)
    if adjust == "scheffe":
        return 1 - _f_cdf(t**2 / family.rank, family.rank, df)
    if adjust == "mvt":
        return np.array([1 - _pmvt(abs(ti), d, family.corr) for ti, d in zip(t, df)])
    return np.array([1 - _pdunnx(abs(ti), family.n, d) for ti, d in zip(t, df)])  # dunnettx


def critical_values(level: float, df: np.ndarray, adjust: str, family: Family
                    ) -> tuple[np.ndarray, str]:
    """The multipliers of the standard errors for two-sided intervals of one family, and
    the method used (p.adjust's stepwise methods give Bonferroni's intervals)."""
    df = np.asarray(df, dtype=np.float64)
    adjust = ci_method(adjust)
    if not np.isfinite(df).all() and not np.isinf(df).all():  # non-estimable rows: NaN
        cv = np.full(len(df), np.nan)
        ok = ~np.isnan(df)
        cv[ok] = critical_values(level, df[ok], adjust, family)[0]
        return cv, adjust
    n = family.n
    if adjust == "none":
        cv = st.t.ppf(0.5 + level / 2, df)
    elif adjust == "sidak":
        cv = -st.t.ppf((1 - level ** (1 / n)) / 2, df)
    elif adjust == "bonferroni":
        cv = -st.t.ppf((1 - level) / n / 2, df)
    elif adjust == "tukey":
        cv = qtukey(level, family.size, df) / math.sqrt(2)
    elif adjust == "scheffe":
        cv = np.sqrt(family.rank * _f_ppf(level, family.rank, df))
    elif adjust == "mvt":  # one root per distinct df (a family's rows mostly share one)
        found = {d: _qmvt(level, d, family.corr) for d in set(df.tolist())}
        cv = np.array([found[d] for d in df.tolist()])
    else:
        cv = np.array([_qdunnx(level, n, d) for d in df])
    return np.asarray(cv, dtype=np.float64), adjust


def ci_method(adjust: str) -> str:
    """The intervals' adjustment: p.adjust's stepwise methods give Bonferroni's."""
    return "bonferroni" if adjust in P_ADJUST and adjust != "none" else adjust


def p_message(adjust: str, family: Family) -> str | None:
    """emmeans' note under a table of adjusted tests."""
    return _message("P value adjustment", adjust, family, "tests")


def ci_message(adjust: str, family: Family) -> str | None:
    """emmeans' note under a table of adjusted intervals."""
    return _message("Conf-level adjustment", ci_method(adjust), family, "estimates")


def _message(what: str, adjust: str, family: Family, things: str) -> str | None:
    rank = {"none": 1, "tukey": 2, "scheffe": 3}.get(adjust, 99)
    if rank == 1 or (family.size < 3 and rank < 10):
        return None
    extra = {"tukey": f"for comparing a family of {family.size} estimates",
             "scheffe": f"with rank {family.rank}"}.get(adjust, f"for {family.n} {things}")
    return f"{what}: {adjust} method {extra}"


def p_adjust(p: np.ndarray, method: str, n: int | None = None) -> np.ndarray:
    """R's p.adjust(p, method, n) (holm, hochberg, bonferroni, BH = fdr, BY, none): ``n``
    tests in the family, of which ``p`` holds the ones computed."""
    p = np.asarray(p, dtype=np.float64)
    lp = len(p)
    n = lp if n is None else n
    if method == "none" or n <= 1:
        return p.copy()
    if method == "bonferroni":
        return np.minimum(1.0, n * p)
    if method == "holm":
        order = np.argsort(p, kind="stable")
        i = np.arange(1, lp + 1)
        adjusted = np.minimum(1.0, np.maximum.accumulate((n + 1 - i) * p[order]))
    else:
        order = np.argsort(-p, kind="stable")
        i = np.arange(lp, 0, -1)
        factor = {"hochberg": n + 1 - i, "BH": n / i, "fdr": n / i,
                  "BY": np.sum(1 / np.arange(1, n + 1)) * n / i}[method]
        adjusted = np.minimum(1.0, np.minimum.accumulate(factor * p[order]))
    out = np.empty(lp)
    out[order] = adjusted
    return out


def _f_cdf(x, d1: float, d2):
    """F(d1, d2)'s distribution function, d2 = ∞ included (χ²_d1 / d1)."""
    d2 = np.asarray(d2, dtype=np.float64)
    return np.where(np.isinf(d2), st.chi2.cdf(np.asarray(x) * d1, d1),
                    st.f.cdf(x, d1, np.where(np.isinf(d2), 1.0, d2)))


def _f_ppf(p: float, d1: float, d2):
    d2 = np.asarray(d2, dtype=np.float64)
    return np.where(np.isinf(d2), st.chi2.ppf(p, d1) / d1,
                    st.f.ppf(p, d1, np.where(np.isinf(d2), 1.0, d2)))


def _pdunnx(x: float, k: int, df: float) -> float:
    """emmeans' approximation to Dunnett's distribution of k comparisons with a control:
    a mix of Tukey's (for the (1 + √(1 + 8k))/2 means with k pairs) and Šidák's bound."""
    weight = (k - 1) / k
    tukey = float(ptukey(math.sqrt(2) * x, (1 + math.sqrt(1 + 8 * k)) / 2, df)[0])
    sidak = _f_cdf(x * x, 1, df) ** k
    return weight * tukey + (1 - weight) * sidak


def _qdunnx(p: float, k: int, df: float) -> float:
    """The quantile of ``_pdunnx``, found between the Tukey and Šidák quantiles."""
    if k < 1.005:
        return float(st.t.ppf(1 - 0.5 * (1 - p), df))
    tukey = float(qtukey(p, (1 + math.sqrt(1 + 8 * k)) / 2, df)[0]) / math.sqrt(2)
    sidak = math.sqrt(_f_ppf(p ** (1 / k), 1, df))
    if abs(tukey - sidak) < 5e-4:
        return float(tukey)
    lo, hi = sorted((tukey, sidak))
    return float(optimize.brentq(lambda x: _pdunnx(x, k, df) - p, lo, hi, xtol=1e-10))


def _mvt_df(df: float) -> int:
    """emmeans' .fix.df: the df rounded as mvtnorm takes them (0 for ∞ or above 9,999,
    which means the multivariate normal)."""
    if not np.isfinite(df) or df > 9999:
        return 0
    return int(math.floor(max(1.0, df) + 0.25))


def _pmvt(x: float, df: float, corr: np.ndarray) -> float:
    """P(|T_j| ≤ x for every j), T multivariate t with ``df`` and correlation ``corr``."""
    k, d = len(corr), _mvt_df(df)
    if x <= 0:
        return 0.0
    if k == 1:
        return float(1 - 2 * st.t.sf(x, d) if d else 1 - 2 * st.norm.sf(x))
    upper, lower, zero = np.full(k, x), np.full(k, -x), np.zeros(k)
    # the contrasts of a family are often linearly dependent (all pairs of m means have
    # rank m − 1): Genz's integration needs a positive definite matrix, and a ridge of
    # 1e-8 moves the probability by far less than the integration's error
    corr = (corr + 1e-8 * np.eye(k)) / (1 + 1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns of a singular correlation
        if d == 0:
            p = st.multivariate_normal.cdf(upper, zero, corr, allow_singular=True,
                                           maxpts=MVT_POINTS * k, abseps=MVT_EPS, releps=0,
                                           lower_limit=lower, rng=np.random.default_rng(0))
        else:
            p = st.multivariate_t.cdf(upper, zero, corr, df=d, allow_singular=True,
                                      maxpts=MVT_POINTS * k, lower_limit=lower,
                                      random_state=np.random.default_rng(0))
    return float(min(max(p, 0.0), 1.0))


def _qmvt(level: float, df: float, corr: np.ndarray) -> float:
    """The x with _pmvt(x) = level: between the unadjusted and the Bonferroni quantiles."""
    d = _mvt_df(df)
    dist = st.t(d) if d else st.norm
    lo = float(dist.ppf(0.5 + level / 2))
    hi = float(dist.ppf(1 - (1 - level) / (2 * len(corr)))) + 1e-9
    if hi - lo < 1e-9:
        return lo
    return float(optimize.brentq(lambda x: _pmvt(x, df, corr) - level, lo, hi, xtol=1e-6))


__all__ = ["Family", "METHODS", "adjusted_p", "critical_values", "p_adjust", "resolve"]
