"""emmeans' contrast families (its .emmc functions) and the labels of the levels they
compare: pairwise and reversed pairwise differences, comparisons with a control, effects
(differences from the grand mean), consecutive differences, integer orthogonal polynomials,
or a user's coefficients; each with emmeans' default multiplicity adjustment."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import ModelError
from .rformat import format_number

CONTRAST_METHODS = ("pairwise", "revpairwise", "trt.vs.ctrl", "trt.vs.ctrl1",
                    "trt.vs.ctrlk", "eff", "del.eff", "poly", "consec")


def contrast_labels(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """emmeans' level labels for contrasts: values pasted with spaces; a variable whose
    values all read as numbers is prefixed by its name; labels with -, +, / or * are put
    in parentheses."""
    parts = []
    for column in columns:
        values = [as_character(v) for v in frame[column]]
        if all(_reads_as_number(v) for v in values):
            values = [f"{column}{v}" for v in values]
        parts.append(values)
    labels = [" ".join(p) for p in zip(*parts)] if parts else [""] * len(frame)
    return np.array([f"({x})" if re.search(r"-|\+|/|\*", x) else x for x in labels],
                    dtype=object)


def as_character(value) -> str:
    if isinstance(value, str):
        return value
    return format_number(float(value), 15).strip()


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def coefficients(method, levels: np.ndarray, ref, reverse: bool
                  ) -> tuple[np.ndarray, list[str], str, bool]:
    """The contrast coefficients (one row per contrast) of emmeans' .emmc functions, their
    names, the default adjustment and whether they are one set of pairwise differences."""
    k = len(levels)
    if isinstance(method, dict):
        coef = np.array([np.asarray(v, dtype=np.float64) for v in method.values()])
        if coef.ndim != 2 or coef.shape[1] != k:
            raise ModelError(f"each contrast needs {k} coefficients (one per mean)")
        return coef, [str(n) for n in method], "none", False
    if method in ("pairwise", "revpairwise"):
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)] if method == "pairwise" \
            else [(i, j) for i in range(1, k) for j in range(i)]
        coef = np.zeros((len(pairs), k))
        for row, (i, j) in enumerate(pairs):
            coef[row, i], coef[row, j] = 1, -1
        return coef, [f"{levels[i]} - {levels[j]}" for i, j in pairs], "tukey", True
    if method.startswith("trt.vs.ctrl"):
        r = {"trt.vs.ctrl1": 1, "trt.vs.ctrlk": k}.get(method, ref)
        r = _position(r, levels)
        others = [i for i in range(k) if i != r]
        coef = np.zeros((len(others), k))
        for row, i in enumerate(others):
            coef[row, i], coef[row, r] = 1, -1
        names = [f"{levels[i]} - {levels[r]}" for i in others]
        if reverse:
            coef, names = -coef, [f"{levels[r]} - {levels[i]}" for i in others]
        return coef, names, "dunnettx", False
    if method in ("eff", "del.eff"):
        coef = np.eye(k) - 1 / k
        if method == "del.eff":
            coef = coef * k / (k - 1)
        return coef, [f"{x} effect" for x in levels], "fdr", False
    if method == "consec":
        coef = np.zeros((k - 1, k))
        for i in range(k - 1):
            coef[i, i + 1], coef[i, i] = 1, -1
        return coef, [f"{levels[i + 1]} - {levels[i]}" for i in range(k - 1)], "mvt", False
    if method == "poly":
        return _poly(k), _POLY_NAMES[:min(6, k - 1)], "none", False
    raise ModelError(f"unknown contrast method {method!r} (use "
                     f"{', '.join(CONTRAST_METHODS)} or a dict of coefficients)")


_POLY_NAMES = ["linear", "quadratic", "cubic", "quartic"] + [f"degree {d}" for d in
                                                            range(5, 21)]


def _poly(k: int) -> np.ndarray:
    """emmeans' poly.emmc: R's orthogonal polynomials in 1..k up to degree min(6, k − 1),
    each scaled to whole numbers."""
    x = np.arange(1, k + 1, dtype=np.float64)
    degree = min(6, k - 1)
    Q, R = np.linalg.qr(np.vander(x - x.mean(), degree + 1, increasing=True))
    raw = (Q * np.diag(R))[:, 1:]
    rows = []
    for con in raw.T:
        con = con / np.sqrt(np.sum(con**2))
        con = con / con[con > 0.01].min()
        z = np.max(np.abs(con - np.round(con)))
        while z > 0.05:
            con = con / z
            z = np.max(np.abs(con - np.round(con)))
        rows.append(np.round(con))
    return np.array(rows)


def _position(ref, levels: np.ndarray) -> int:
    if isinstance(ref, str):
        matches = [i for i, x in enumerate(levels) if x == ref]
        if not matches:
            raise ModelError(f"ref {ref!r} is not one of the levels ({', '.join(levels)})")
        return matches[0]
    if isinstance(ref, (int, np.integer)) and 1 <= ref <= len(levels):
        return int(ref) - 1
    raise ModelError(f"ref must be a level or a position from 1 to {len(levels)}, not "
                     f"{ref!r}")


__all__ = ["CONTRAST_METHODS", "as_character", "coefficients", "contrast_labels"]
