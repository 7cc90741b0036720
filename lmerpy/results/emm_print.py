"""emmeans' print.summary_emm: every numeric column zapsmall()ed, df rounded to 2
decimals, test statistics to 3 and p-values to 4 (``<.0001`` below), the other numbers
formatted with the significant digits the estimates' ±2 SE ranges call for (.opt.dig);
labels left-aligned, numbers right-aligned, wrapped at 80 columns as R prints a matrix;
``by`` groups printed one after another; the notes below, each with R's trailing space."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .rformat import format_numbers, print_matrix, r_round, zapsmall

TEST_STATISTICS = ("t.ratio", "z.ratio", "F.ratio")


def summary_lines(table: pd.DataFrame, estimate: str, by: list[str], messages: list[str],
                  numeric_labels: set[str]) -> list[str]:
    """The printed table (``estimate``: the name of the estimates' column)."""
    digits = _digits(table, estimate)
    cells: dict[str, list[str]] = {}
    right: dict[str, bool] = {}
    for column in table.columns:
        values = table[column]
        number = column in numeric_labels or (
            pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))
        right[column] = number
        if not number:
            texts = [str(v) for v in values]
            width = max(len(t) for t in texts)
            cells[column] = [t.ljust(width) for t in texts]
            continue
        x = zapsmall(values.to_numpy(dtype=np.float64), 7)
        if column in ("df", "df2"):
            x = r_round(x, 2)
        if column in TEST_STATISTICS:
            texts = format_numbers(r_round(x, 3), 7, nsmall=3)
        elif column == "p.value":
            texts = format_numbers(r_round(x, 4), 7, nsmall=4)
            texts = ["<.0001".rjust(len(t)) if t.strip() == "0.0000" else t for t in texts]
        else:
            texts = format_numbers(x, digits)
        missing = "nonEst" if column == estimate else "NA"  # not estimable: R's NA
        cells[column] = [missing if np.isnan(v) else t for v, t in zip(x, texts)]
    for c in table.columns:  # each column to one width: labels left, numbers right
        w = max([len(c)] + [len(t) for t in cells[c]])
        cells[c] = [t.rjust(w) if right[c] else t.ljust(w) for t in cells[c]]
    shown = [c for c in table.columns if c not in by]
    header = [c if right[c] else c.ljust(len(cells[c][0])) for c in shown]

    def block(rows: list[int]) -> list[str]:
        return print_matrix([[cells[c][i] for c in shown] for i in rows], header,
                            [""] * len(rows), right=True, width=80) + [""]

    lines: list[str] = []
    if not by:
        lines += block(list(range(len(table))))
    else:
        order = sorted(range(len(table)), key=lambda i: tuple(
            _rank(table[b], i) for b in reversed(by)))
        groups: dict[str, list[int]] = {}
        for i in order:
            label = ", ".join(f"{b} = {cells[b][i]}" for b in by)
            groups.setdefault(label, []).append(i)
        for label, rows in groups.items():
            lines += [f"{label}:"] + block(rows)
    return lines + [f"{m} " for m in messages]


def _rank(column: pd.Series, i: int):
    """The sort key of a by variable's value: its first appearance (the grid's level
    order) for labels, the value for numbers."""
    if pd.api.types.is_numeric_dtype(column):
        return float(column.iloc[i])
    return list(dict.fromkeys(column)).index(column.iloc[i])


def _digits(table: pd.DataFrame, estimate: str) -> int:
    """emmeans' .opt.dig over each row's (estimate − 2 SE, estimate, estimate + 2 SE)."""
    if "SE" not in table.columns:
        return 7
    est, se = table[estimate].to_numpy(np.float64), table["SE"].to_numpy(np.float64)
    best = -math.inf
    for e, s in zip(est, se):
        best = max(best, _opt_dig(np.array([e - 2 * s, e, e + 2 * s])))
    return int(best)


def _opt_dig(x: np.ndarray) -> float:
    mx = np.max(np.abs(x))
    if not np.isfinite(mx) or mx == 0:
        return 3
    z = np.array([x.min(), x.max()]) / mx
    dz = zapsmall(np.array([z[1] - z[0], z[0], z[1]]), 8)[0]
    if dz <= 0:
        return 3
    return max(float(np.round(1.51 - math.log10(dz))), 3)


__all__ = ["summary_lines"]
