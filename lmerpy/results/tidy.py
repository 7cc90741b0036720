"""broom.mixed's ``tidy()``, ``glance()`` and ``augment()``: a fitted model as data frames of
one row per parameter, one row per model, and one row per observation — the forms R users
put in tables and plots, here as pandas frames with broom's column names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats as st

from ..engines.glmm import pearson_weights
from ..engines.options import require_probability
from ..errors import ModelError
from .model import LmerResult
from .summary import coefficient_table

EFFECTS = ("fixed", "ran_pars", "ran_vals", "ran_coefs")


def tidy(model: LmerResult, effects: str | list[str] | tuple[str, ...] = ("ran_pars", "fixed"),
         scales: str = "sdcor", conf_int: bool = False, conf_level: float = 0.95,
         conf_method: str = "Wald", exponentiate: bool = False, ddf: str | None = None,
         **confint_options) -> pd.DataFrame:
    """broom.mixed's ``tidy(m)``: one row per estimate, with columns effect, group, term,
    estimate, std.error, statistic (and df, p.value where lme4 or lmerTest gives them;
    conf.low, conf.high with ``conf_int``).

    ``effects``: "fixed" (β), "ran_pars" (standard deviations and correlations, or with
    ``scales="vcov"`` variances and covariances; the residual's as group Residual, term
    sd__Observation), "ran_vals" (the conditional modes and their conditional sds) and
    "ran_coefs" (``coef(m)``), always in that order. ``ddf="Satterthwaite"`` or
    ``"Kenward-Roger"`` adds lmerTest's df and p-values to an LMM's fixed effects.
    ``conf_method``: "Wald" (fixed effects and random-effect modes), or "profile" or
    "boot" (``confint``'s intervals, the variance parameters' too; ``confint_options``
    such as nsim= and seed= go to it). ``exponentiate``: exp of the fixed effects and
    their ends, the standard errors by the delta method (odds or rate ratios)."""
    if not isinstance(model, LmerResult):
        raise ModelError(f"tidy() takes a fitted model, not {type(model).__name__}")
    wanted = [effects] if isinstance(effects, str) else list(effects)
    for e in wanted:
        if e not in EFFECTS:
            raise ModelError(f"unknown effects {e!r} (use {', '.join(map(repr, EFFECTS))})")
    if scales not in ("sdcor", "vcov"):
        raise ModelError(f"scales must be 'sdcor' or 'vcov', not {scales!r}")
    if conf_method not in ("Wald", "profile", "boot"):
        raise ModelError(f"conf_method must be 'Wald', 'profile' or 'boot', not "
                         f"{conf_method!r}")
    require_probability("conf_level", conf_level, "0.95")
    ends = None
    if conf_int and conf_method != "Wald" and {"fixed", "ran_pars"} & set(wanted):
        ends = model.confint(method=conf_method, level=conf_level, **confint_options)
    z = st.norm.ppf(0.5 + conf_level / 2)
    parts = []
    if "fixed" in wanted:
        parts.append(_fixed(model, ddf, conf_int, z, ends, exponentiate))
    if "ran_pars" in wanted:
        parts.append(_ran_pars(model, scales, conf_int, ends))
    if "ran_vals" in wanted:
        parts.append(_ran_vals(model, conf_int, z))
    if "ran_coefs" in wanted:
        parts.append(_ran_coefs(model))
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if parts else \
        pd.DataFrame()
    # broom's column order, keeping only what some row has
    order = ["effect", "group", "level", "term", "estimate", "std.error", "statistic", "df",
             "p.value", "conf.low", "conf.high"]
    return out[[c for c in order if c in out.columns]]


def _fixed(m: LmerResult, ddf, conf_int, z, ends, exponentiate) -> pd.DataFrame:
    table = coefficient_table(m, ddf)
    if not len(table):
        return pd.DataFrame()
    est, se = table["Estimate"].to_numpy(), table["Std. Error"].to_numpy()
    out = pd.DataFrame({"effect": "fixed", "group": None, "term": list(table.index),
                        "estimate": est, "std.error": se,
                        "statistic": table.iloc[:, 2 + ("df" in table)].to_numpy()})
    if "df" in table:
        out["df"] = table["df"].to_numpy()
    p_col = [c for c in table.columns if c.startswith("Pr(")]
    if p_col:
        out["p.value"] = table[p_col[0]].to_numpy()
    if conf_int:
        if ends is None:
            out["conf.low"], out["conf.high"] = est - z * se, est + z * se
        else:
            out["conf.low"] = ends.loc[table.index].iloc[:, 0].to_numpy()
            out["conf.high"] = ends.loc[table.index].iloc[:, 1].to_numpy()
    if exponentiate:
        out["std.error"] = out["std.error"] * np.exp(out["estimate"])
        for col in ("estimate", "conf.low", "conf.high"):
            if col in out:
                out[col] = np.exp(out[col])
    return out


def _ran_pars(m: LmerResult, scales: str, conf_int, ends) -> pd.DataFrame:
    """Per term, its lower triangle by columns (sd, then its correlations with the later
    columns: lme4's order of θ and of confint's .sig01, .sig02, ...), then the residual."""
    vc = m.VarCorr()
    rows = []
    for t in vc.terms:
        p = len(t.names)
        for j in range(p):
            rows.append((t.group, f"sd__{t.names[j]}", f"var__{t.names[j]}", t.sd[j],
                         t.cov[j, j]))
            for i in range(j + 1, p):
                pair = f"{t.names[j]}.{t.names[i]}"
                rows.append((t.group, f"cor__{pair}", f"cov__{pair}", t.corr[i, j],
                             t.cov[i, j]))
        if t.lengthscale is not None:
            rows.append((t.group, "lengthscale", "lengthscale", t.lengthscale,
                         t.lengthscale))
    sigma = vc.sigma
    if sigma is None and m.family is not None and m.family.has_dispersion:
        sigma = m.sigma  # a dispersion family's √φ, lme4's sigma(m)
    if sigma is not None:
        rows.append(("Residual", "sd__Observation", "var__Observation", sigma, sigma**2))
    vcov = scales == "vcov"
    out = pd.DataFrame({"effect": "ran_pars", "group": [r[0] for r in rows],
                        "term": [r[2] if vcov else r[1] for r in rows],
                        "estimate": [r[4] if vcov else r[3] for r in rows]})
    if conf_int:
        out["conf.low"], out["conf.high"] = np.nan, np.nan
        if ends is not None and not vcov:
            names = [n for n in ends.index if n.startswith(".sig")]
            sd_rows = [k for k, r in enumerate(rows) if r[1] != "lengthscale"]
            for k, name in zip(sd_rows, names):
                out.loc[k, ["conf.low", "conf.high"]] = ends.loc[name].to_numpy()
    return out


def _ran_vals(m: LmerResult, conf_int, z) -> pd.DataFrame:
    re = m.ranef(condVar=True).to_frame()
    out = pd.DataFrame({"effect": "ran_vals", "group": re["grpvar"].to_numpy(),
                        "level": re["grp"].astype(str).to_numpy(),
                        "term": re["term"].to_numpy(), "estimate": re["condval"].to_numpy(),
                        "std.error": re["condsd"].to_numpy()})
    if conf_int:
        out["conf.low"] = out["estimate"] - z * out["std.error"]
        out["conf.high"] = out["estimate"] + z * out["std.error"]
    return out


def _ran_coefs(m: LmerResult) -> pd.DataFrame:
    rows = []
    for group, frame in m.coef().items():
        for term in frame.columns:
            for level, value in frame[term].items():
                rows.append((group, str(level), term, float(value)))
    return pd.DataFrame(rows, columns=["group", "level", "term", "estimate"]).assign(
        effect="ran_coefs")


def glance(model: LmerResult) -> pd.DataFrame:
    """broom.mixed's ``glance(m)``: one row of nobs, sigma, logLik, AIC, BIC, the REML
    criterion (REML fits) or the deviance (ML and GLMM fits: lme4's deviance(m)), and
    df.residual (n less the parameters counted by logLik)."""
    if not isinstance(model, LmerResult):
        raise ModelError(f"glance() takes a fitted model, not {type(model).__name__}")
    ll = model.logLik()
    row = {"nobs": model.nobs, "sigma": model.sigma, "logLik": float(ll),
           "AIC": model.AIC(), "BIC": model.BIC()}
    if model.family is None and model.REML:
        row["REMLcrit"] = model.REMLcrit()
    else:
        row["deviance"] = model.deviance()
    row["df.residual"] = model.nobs - ll.df
    return pd.DataFrame([row])


def augment(model: LmerResult) -> pd.DataFrame:
    """broom.mixed's ``augment(m)``: the rows the model used, its columns, and per row
    .fitted (the linear predictor with the random effects), .resid (residuals(): response
    residuals of an LMM, deviance residuals of a GLMM), .hat, .cooksd (lme4's
    cooks.distance, from the hat values and Pearson residuals), .fixed (the predictor
    without random effects), .mu (the mean), .offset, .sqrtXwt and .sqrtrwt (lme4's
    square-root weights: √w for an LMM; √(w/V(μ)) and that times dμ/dη for a GLMM),
    .weights (prior weights; a cbind() response's totals), .wtres (√rwt·(y − μ)); and .eta
    for a GLMM."""
    if not isinstance(model, LmerResult):
        raise ModelError(f"augment() takes a fitted model, not {type(model).__name__}")
    d = model.design
    data = model._data
    if data is None:
        raise ModelError("this model keeps no data frame (a refit to a response given by an "
                         "expression): augment() needs the model's rows")
    cols = [c for c in model.formula.variables() if c in data.columns]
    if model.weights_name in data.columns and model.weights_name not in cols:
        cols.append(model.weights_name)  # model.frame's "(weights)"
    out = data.loc[d.index, cols].reset_index(drop=True)
    f = model.fit
    n = model.nobs
    # the formula's offset (a torch fit keeps the network's output in its fit's offset)
    offset = np.zeros(n) if d.offset is None else np.asarray(d.offset, dtype=np.float64)
    fitted = model.predict().to_numpy()
    fixed = model.predict(re_form="NA").to_numpy()
    hat = np.full(n, np.nan) if model.torch_info is not None else model._hat()
    resid = model.residuals().to_numpy()
    pearson = model.residuals(type="pearson").to_numpy()
    if model.family is None:
        w = np.ones(n) if f.weights is None else np.asarray(f.weights, dtype=np.float64)
        mu = fitted
        sqrt_r = sqrt_x = np.sqrt(w)
        y = np.asarray(f.y, dtype=np.float64)
        sigma2 = model.sigma**2
    else:
        w = np.asarray(f.prior_weights, dtype=np.float64)
        mu = np.asarray(f.mu, dtype=np.float64)
        fam = model.family
        sqrt_r = np.sqrt(pearson_weights(f))
        sqrt_x = sqrt_r * fam.link.mu_eta(np.asarray(f.eta, dtype=np.float64))
        y = np.asarray(f.y, dtype=np.float64)
        sigma2 = model.sigma**2 if fam.has_dispersion else 1.0
    p = np.linalg.matrix_rank(f.X) if f.X.size else 0
    with np.errstate(divide="ignore", invalid="ignore"):
        cooks = (pearson / (1.0 - hat)) ** 2 * hat / (sigma2 * p) if p else np.full(n, np.nan)
    cooks[~np.isfinite(cooks)] = np.nan
    extra = {".fitted": fitted, ".resid": resid, ".hat": hat, ".cooksd": cooks,
             ".fixed": fixed, ".mu": mu, ".offset": offset, ".sqrtXwt": sqrt_x,
             ".sqrtrwt": sqrt_r, ".weights": w, ".wtres": sqrt_r * (y - mu)}
    if model.family is not None:
        extra[".eta"] = fitted
    return pd.concat([out, pd.DataFrame(extra)], axis=1)


__all__ = ["augment", "glance", "tidy"]
