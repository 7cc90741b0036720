"""A fitted model's results as plain JSON-ready data (the CLI's --json, and saved models)."""

from __future__ import annotations

import math

import numpy as np


def _clean(value):
    """numpy scalars/arrays to Python numbers/lists; NaN and infinities to None (JSON)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


def results_dict(m) -> dict:
    """Estimates, standard errors, variance components, criteria and the summary text."""
    fe = m.fixef()
    V = m.vcov().to_numpy()
    se = np.sqrt(np.diag(V)) if len(fe) else np.zeros(0)
    vc = m.VarCorr().to_frame()
    ranef = {g: {"levels": [str(i) for i in df.index], "terms": list(df.columns),
                 "values": df.to_numpy()} for g, df in m.ranef().items()}
    ll = m.logLik()
    out = {
        "formula": m.formula.as_written,
        "family": None if m.family is None else {"family": m.family.family,
                                                  "link": m.family.link.name,
                                                  "theta": m.family.theta},
        "engine": "torch" if m.torch_info is not None else "exact",
        "REML": bool(m.REML) if m.family is None else False,
        "nobs": m.nobs, "ngrps": m.ngrps,
        "fixef": {"names": list(fe.index), "estimate": fe.to_numpy(), "std_error": se,
                  "vcov": V},
        "theta": m.theta,
        "sigma": m.sigma if m.family is None or m.family.has_dispersion else None,
        "varcorr": vc.where(vc.notna(), None).to_dict(orient="list"),
        "lengthscale": m.VarCorr().lengthscales,
        "ranef": ranef,
        "logLik": float(ll), "df": ll.df, "AIC": m.AIC(), "BIC": m.BIC(),
        "deviance": m.deviance(),
        "isSingular": m.isSingular(),
        "messages": list(m.optinfo.get("messages_conv", [])),
        "summary": str(m.summary()),
    }
    return _clean(out)


__all__ = ["results_dict"]
