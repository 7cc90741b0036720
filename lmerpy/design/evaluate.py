"""Evaluate formula expressions on data with a whitelist: no Python ``eval`` ever runs.

Only numbers, column names, arithmetic / comparison operators and the functions of
:mod:`lmerpy.formula.functions` are understood; the parser has already rejected the rest,
and anything unexpected here is still refused rather than executed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula import nodes as N
from ..formula.functions import IDENTITY, MATH_FUNCTIONS, literal

LITERAL_NAMES = {"TRUE": True, "T": True, "FALSE": False, "F": False}

_BINARY = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power,
    "==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater,
    "<=": np.less_equal, ">=": np.greater_equal,
}


def is_numeric(series: pd.Series) -> bool:
    """True for numeric columns (bool and categorical/text columns are not numeric)."""
    return (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
            and not isinstance(series.dtype, pd.CategoricalDtype))


def check_column_type(series: pd.Series, name: str) -> None:
    """Refuse column types that have no model-matrix meaning: dates and times, object
    columns of other things than numbers and text (lists, dicts, ...), and object columns
    that mix numbers with text (almost always a data-entry or parsing error)."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype) \
            or isinstance(dtype, pd.PeriodDtype):
        raise DataError(f"column '{name}' holds dates/times ({dtype}); convert it to numbers "
                        f"(e.g. days since a reference date) or to categories (astype(str))")
    if pd.api.types.is_object_dtype(dtype):
        values = series.dropna()
        odd = values.map(lambda v: not isinstance(v, (str, bool, int, float, np.generic)))
        if odd.any():
            row = values.index[odd.to_numpy()][0]
            raise DataError(f"column '{name}' holds {type(values[row]).__name__} values (row "
                            f"{row!r}: {values[row]!r}); a column must hold numbers, text "
                            f"or categories")
        is_num = values.map(lambda v: isinstance(v, (int, float, np.number))
                            and not isinstance(v, bool))
        if is_num.any() and not is_num.all():
            row = values.index[~is_num.to_numpy()][0]
            raise DataError(f"column '{name}' mixes numbers and text (row {row!r} holds "
                            f"{values[row]!r}); convert it to one type first")


def numeric_column(data: pd.DataFrame, name: str, context: str) -> np.ndarray:
    """A column as float64, or a DataError saying why it is not numeric."""
    series = data[name]
    check_column_type(series, name)
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64)
    if not is_numeric(series):
        kind = "categories" if isinstance(series.dtype, pd.CategoricalDtype) else "text"
        raise DataError(f"column '{name}' holds {kind}, not numbers, so it cannot be used in "
                        f"'{context}'")
    return series.to_numpy(dtype=np.float64)


def evaluate(node: N.Node, data: pd.DataFrame, context: str | None = None) -> np.ndarray:
    """Evaluate an arithmetic expression on every row of ``data``; returns a 1-d array."""
    context = context or str(node)
    with np.errstate(all="ignore"):
        out = _eval(node, data, context)
    out = np.asarray(out)
    if out.ndim == 0:
        out = np.full(len(data), out.item())
    if out.dtype != bool:
        out = out.astype(np.float64)
        bad = ~np.isfinite(out)
        if bad.any():
            rows = list(data.index[bad][:5])
            raise DataError(f"'{context}' is not finite (NaN or infinite) at {int(bad.sum())} "
                            f"row(s), e.g. rows {rows}: check the domain of the functions used")
    return out


def _eval(node: N.Node, data: pd.DataFrame, context: str):
    if isinstance(node, N.Number):
        return np.float64(node.value)
    if isinstance(node, N.Name):
        if node.id in data.columns:
            return numeric_column(data, node.id, context)
        if node.id in LITERAL_NAMES:
            return np.bool_(LITERAL_NAMES[node.id])
        raise DataError(f"column '{node.id}' not found in data")
    if isinstance(node, N.Paren):
        return _eval(node.expr, data, context)
    if isinstance(node, N.Unary):
        value = _eval(node.operand, data, context)
        return -value if node.op == "-" else +value
    if isinstance(node, N.BinOp) and node.op in _BINARY:
        left = _eval(node.left, data, context)
        right = _eval(node.right, data, context)
        return _BINARY[node.op](left, right)
    if isinstance(node, N.Call) and node.fn in IDENTITY and len(node.args) == 1:
        return _eval(node.args[0], data, context)
    if isinstance(node, N.Call) and node.fn in MATH_FUNCTIONS and len(node.args) == 1:
        value = np.asarray(_eval(node.args[0], data, context), dtype=np.float64)
        kwargs = dict(node.kwargs)
        if node.fn == "log" and "base" in kwargs:
            return np.log(value) / np.log(float(literal(kwargs["base"], "base")))
        if node.fn == "round" and "digits" in kwargs:
            return np.round(value, int(literal(kwargs["digits"], "digits")))
        return MATH_FUNCTIONS[node.fn](value)
    raise FormulaError(f"'{node}' cannot be evaluated (only arithmetic, comparisons and "
                       f"whitelisted functions can)", node.pos + 1)
