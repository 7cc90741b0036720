"""The reference grid of a fitted model's fixed part, as lmerTest's ls_means and emmeans
build it: every level of every factor crossed (R's expand.grid, the first fastest), each
numeric variable at its mean over the rows used or at the values the user gives, and the
model matrix of each grid row (transformations such as ``I(x^2)`` computed from the grid's
values, as R's model.matrix on the grid computes them). Marginal means are averages of the
grid's rows, equally weighted or by the data's frequencies (emmeans' ``weights``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.encoding import as_labels
from ..errors import ModelError
from ..formula import nodes as N

WEIGHTS = ("equal", "proportional", "outer", "cells", "flat")


@dataclass
class ReferenceGrid:
    """The grid (the data's own values), each variable's level labels per grid row, its
    levels in order, which variables are factors, the grid's model matrix and its offset
    (zeros for a model without one)."""

    frame: pd.DataFrame
    labels: dict[str, list[str]]
    levels: dict[str, list]
    factors: list[str]
    X: np.ndarray
    offset: np.ndarray
    counts: np.ndarray  # observations at each grid row's factor levels (emmeans' .wgt.)

    def cell_means(self, columns: list[str], weights: str = "equal"
                   ) -> tuple[np.ndarray, list[tuple]]:
        """One row of L per combination of the ``columns``' levels (the first fastest): the
        weighted average of the grid's rows at that combination (``weights`` as emmeans'
        "equal", "proportional", "outer", "cells" or "flat"); with the combinations."""
        return self._cells(columns, self.X, weights)

    def cell_offsets(self, columns: list[str], weights: str = "equal") -> np.ndarray:
        """The offset averaged as ``cell_means`` averages the rows."""
        return self._cells(columns, self.offset[:, None], weights)[0][:, 0]

    def _cells(self, columns: list[str], values: np.ndarray, weights: str
               ) -> tuple[np.ndarray, list]:
        w = self.weights(columns, weights)
        cell = np.zeros(len(self.frame), dtype=np.int64)  # each row's combination, first fastest
        stride = 1
        for column in columns:
            index = {level: i for i, level in enumerate(self.levels[column])}
            cell += stride * np.array([index[v] for v in self.labels[column]], dtype=np.int64)
            stride *= len(self.levels[column])
        sums = np.zeros((stride, values.shape[1]))
        np.add.at(sums, cell, w[:, None] * values)
        totals = np.bincount(cell, weights=w, minlength=stride)
        combos = [combo[::-1] for combo in
                  itertools.product(*[self.levels[c] for c in reversed(columns)])]
        empty = np.flatnonzero(~(totals > 0))
        if len(empty):
            where = ", ".join(f"{c} = {v}" for c, v in zip(columns, combos[empty[0]]))
            raise ModelError(f"weights={weights!r}: no observations at {where}")
        return sums / totals[:, None], combos

    def weights(self, columns: list[str], kind: str) -> np.ndarray:
        """Each grid row's weight in the averages over the factors not in ``columns``:
        emmeans' equal weights; the averaged factors' joint ("proportional") or marginal
        ("outer": their product) frequencies; the row's own frequency ("cells"); or 1 where
        the row has observations ("flat")."""
        if kind == "equal":
            return np.ones(len(self.frame))
        if kind == "cells":
            return self.counts.astype(np.float64)
        if kind == "flat":
            return (self.counts > 0).astype(np.float64)
        averaged = [c for c in self.factors if c not in columns]
        keys = [tuple(self.labels[c][r] for c in averaged) for r in range(len(self.frame))]
        if kind == "proportional":
            total: dict[tuple, float] = {}
            for key, n in zip(keys, self.counts):
                total[key] = total.get(key, 0.0) + n
            return np.array([total[key] for key in keys])
        if kind == "outer":
            N = float(self.counts.sum())
            w = np.full(len(self.frame), N)
            for c in averaged:
                margin: dict[str, float] = {}
                for level, n in zip(self.labels[c], self.counts):
                    margin[level] = margin.get(level, 0.0) + n
                w *= np.array([margin[level] / N for level in self.labels[c]])
            return w
        raise ModelError(f"weights must be one of {', '.join(WEIGHTS)}, not {kind!r}")


def reference_grid(m, at: dict | None = None, offset: float | None = None) -> ReferenceGrid:
    """The reference grid of ``m``'s fixed part; ``at`` maps a variable to the values (a
    factor's levels, or numbers) to hold it at instead of all levels or the mean. The
    offset is its mean over the rows used (emmeans' reference grid), or ``offset``."""
    encoder = m.design.fixed_encoder
    data = m._data.loc[m.design.index]
    variables = list(m.design.formula.fixed.variables())
    at = dict(at or {})
    in_offset = [name for name in at if name not in variables
                 and name in _offset_variables(m.design.formula)]
    if in_offset:
        raise ModelError(f"at: {in_offset[0]!r} is a variable of the offset only; give the "
                         f"offset's value with offset=")
    unknown = [name for name in at if name not in variables]
    if unknown:
        raise ModelError(f"at: {unknown[0]!r} is not a variable of the fixed part "
                         f"({', '.join(variables) or 'it has none'})")
    factor_levels: dict[str, list] = {}
    for f in encoder.factors.values():
        if f.categorical:
            inner = f._inner()
            if not isinstance(inner, N.Name):
                raise ModelError(f"a reference grid needs factors that are columns, not "
                                 f"{f.label}")
            factor_levels[inner.id] = list(f.levels)
    levels: dict[str, list] = {}
    for column in variables:
        if column in factor_levels:
            levels[column] = _factor_levels(column, factor_levels[column], at.get(column))
        elif column in at:
            levels[column] = _numbers(column, at[column])
        else:
            values = pd.to_numeric(data[column], errors="coerce")
            if values.isna().any():
                raise ModelError(f"column {column!r} is neither a factor of the fixed part "
                                 f"nor numeric; give its value in at=")
            levels[column] = [float(values.mean())]
    combos = itertools.product(*[levels[c] for c in reversed(variables)])
    frame = pd.DataFrame([dict(zip(reversed(variables), combo)) for combo in combos],
                         columns=variables)
    labels = {c: list(frame[c]) for c in variables}
    for column in factor_levels:  # the data's own values behind each label
        lookup = dict(zip(list(as_labels(data[column])), data[column]))
        frame[column] = frame[column].map(lookup)
    observed = pd.DataFrame({c: list(as_labels(data[c])) for c in factor_levels})
    counts = observed.value_counts().to_dict() if factor_levels else {(): len(data)}
    key = list(factor_levels)
    counts_per_row = np.array([counts.get(tuple(labels[c][r] for c in key), 0)
                               if key else len(data) for r in range(len(frame))])
    return ReferenceGrid(frame, labels, levels, list(factor_levels), encoder.transform(frame),
                         _offset(m, frame, offset), counts_per_row)


def _offset(m, frame: pd.DataFrame, value: float | None) -> np.ndarray:
    if value is not None:
        if m.design.offset is None:
            raise ModelError("offset= is for models with an offset() term")
        return np.full(len(frame), float(value))
    if m.design.offset is None:
        return np.zeros(len(frame))
    return np.full(len(frame), float(np.mean(m.design.offset)))


def _offset_variables(formula) -> list[str]:
    return list(dict.fromkeys(n for o in formula.offsets for n in N.names_in(o)))


def _factor_levels(column: str, levels: list[str], wanted) -> list[str]:
    if wanted is None:
        return levels
    wanted = [wanted] if np.isscalar(wanted) else list(wanted)
    labels = [str(w) if not isinstance(w, bool) else ("TRUE" if w else "FALSE")
              for w in wanted]
    missing = [w for w in labels if w not in levels]
    if missing:
        raise ModelError(f"at: {missing[0]!r} is not a level of factor {column!r} (its "
                         f"levels: {', '.join(levels)})")
    return [level for level in levels if level in labels]


def _numbers(column: str, wanted) -> list[float]:
    values = np.atleast_1d(np.asarray(wanted, dtype=object))
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ModelError(f"at: {column!r} is numeric; give numbers, not "
                         f"{list(values)!r}") from None
    if not numbers or not all(np.isfinite(numbers)):
        raise ModelError(f"at: {column!r} needs finite numbers")
    return numbers


__all__ = ["ReferenceGrid", "reference_grid"]
