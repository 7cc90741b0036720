"""Validate a DataFrame against a formula: columns present, no duplicates, NA rows counted."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError, warn
from .evaluate import LITERAL_NAMES, is_numeric


@dataclass(frozen=True)
class CleanFrame:
    """The rows a model uses, and what was dropped to get them."""

    data: pd.DataFrame
    n_dropped: int
    dropped_index: pd.Index
    kept: np.ndarray          # which of the given rows were kept (a mask)


def check_frame(data: object, what: str = "data") -> pd.DataFrame:
    """Refuse anything that is not a non-empty DataFrame with unique column names."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame, not {type(data).__name__}")
    if data.columns.duplicated().any():
        dups = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
        raise DataError(f"{what} has duplicate column names: {', '.join(dups)}")
    if len(data) == 0:
        raise DataError(f"{what} has no rows")
    return data


def require_columns(data: pd.DataFrame, names: list[str], what: str = "data") -> None:
    """Every name must be a column; otherwise an error naming it, with close matches."""
    columns = [str(c) for c in data.columns]
    for name in names:
        if name in data.columns or name in LITERAL_NAMES:
            continue
        close = difflib.get_close_matches(name, columns, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise DataError(f"column '{name}' not found in {what}{hint}")


def drop_missing(data: pd.DataFrame, columns: list[str], na_action: str = "omit",
                 allowed: tuple[str, ...] = ("omit", "raise")) -> CleanFrame:
    """Drop rows with NA in any used column (counted and reported), or raise. ``"pass"``
    (for new data: ``allowed`` names it) sets them aside without a warning, for the caller to
    answer NA there, as lme4's predict() does with na.pass."""
    if na_action not in allowed:
        options = ", ".join(repr(a) for a in allowed[:-1]) + f" or {allowed[-1]!r}"
        raise DataError(f"na_action must be {options}, not {na_action!r}")
    sub = data[columns]
    for col in columns:
        series = sub[col]
        if is_numeric(series):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            inf = np.isinf(values)
            if inf.any():
                rows = list(data.index[inf][:5])
                raise DataError(f"column '{col}' holds infinite values at {int(inf.sum())} "
                                f"row(s), e.g. rows {rows}")
    missing = sub.isna()
    bad = missing.any(axis=1).to_numpy()
    n_bad = int(bad.sum())
    if n_bad == 0:
        return CleanFrame(data, 0, data.index[:0], ~bad)
    counts = {c: int(missing[c].sum()) for c in columns if missing[c].any()}
    detail = ", ".join(f"'{c}': {k}" for c, k in counts.items())
    if na_action == "raise":
        raise DataError(f"{n_bad} row(s) have missing values (NA per column: {detail}); "
                        f"use na_action='omit' to drop them")
    if na_action == "pass":
        return CleanFrame(data.loc[~bad], n_bad, data.index[bad], ~bad)
    if n_bad == len(data):
        raise DataError(f"every row has a missing value in a used column (NA per column: "
                        f"{detail})")
    warn(f"{n_bad} row(s) dropped because of missing values (NA per column: "
         f"{detail})")
    return CleanFrame(data.loc[~bad], n_bad, data.index[bad], ~bad)
