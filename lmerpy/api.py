"""The user-facing functions: ``lmer()`` (formula -> design -> engine -> result)."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd

from .design import design as make_design
from .engines.exact import LmerControl, fit_lmer
from .errors import DataError, ModelError
from .formula import Formula, parse
from .results.model import LmerResult


def _caller_name(obj, depth: int = 2) -> str | None:
    """The caller's variable name for ``obj`` (R prints 'Data: sleepstudy'); identity only."""
    frame = inspect.currentframe()
    try:
        for _ in range(depth):
            frame = frame.f_back if frame is not None else None
        if frame is None:
            return None
        for name, value in frame.f_locals.items():
            if value is obj and not name.startswith("_"):
                return name
    finally:
        del frame
    return None


def lmer(formula: str | Formula, data: pd.DataFrame, REML: bool = True,
         weights: str | np.ndarray | pd.Series | None = None,
         control: LmerControl | None = None, na_action: str = "omit",
         engine: str = "auto", data_name: str | None = None) -> LmerResult:
    """Fit a linear mixed model, as lme4's ``lmer()``.

    ``weights`` is a column name or an array of prior weights; ``engine="exact"`` (default
    for formulas without nn() terms) agrees with lme4.
    """
    if isinstance(formula, str):
        formula = parse(formula)
    if engine not in {"auto", "exact"}:
        raise ModelError(f"engine {engine!r} is not available yet (use 'exact')")
    if formula.nn:
        raise ModelError("formulas with nn() terms need the torch engine, which is not "
                         "available yet")
    data_name = data_name or _caller_name(data) or "data"
    weights_name = None
    w = None
    if isinstance(weights, str):
        if not isinstance(data, pd.DataFrame) or weights not in data.columns:
            raise DataError(f"weights column '{weights}' not found in data")
        weights_name = weights
        data = data.copy()
        data["(weights)"] = data[weights]
    elif weights is not None:
        arr = np.asarray(weights, dtype=np.float64).ravel()
        if not isinstance(data, pd.DataFrame) or len(arr) != len(data):
            raise DataError(f"weights has length {len(arr)}, data has "
                            f"{len(data) if isinstance(data, pd.DataFrame) else '?'} rows")
        weights_name = "weights"
        data = data.copy()
        data["(weights)"] = arr
    d = make_design(formula, data, na_action=na_action,
                    extra_columns=["(weights)"] if weights is not None else None)
    if weights is not None:
        w = data.loc[d.index, "(weights)"].to_numpy(dtype=np.float64)
    fit = fit_lmer(d, REML=REML, weights=w, control=control)
    return LmerResult(fit, data_name, weights_name, data)
