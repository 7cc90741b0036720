"""lme4's ``rePCA()``: the principal components of each grouping factor's relative covariance
factor (Bates, Kliegl, Vasishth & Baayen 2015, "Parsimonious mixed models"). A component
whose standard deviation is near zero is a direction of the random effects the data do not
support: the model is over-parameterised (and usually singular).

For a grouping factor, lme4 takes the block diagonal of its terms' templates T_j (Λ's
p × p blocks, Λ relative to σ for an LMM) and returns its singular value decomposition
T = U S V' as a prcomp object: ``sdev`` = the singular values, ``rotation`` = U.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg as sla

from .rformat import format_numbers, print_matrix

IMPORTANCE_ROWS = ["Standard deviation", "Proportion of Variance", "Cumulative Proportion"]


@dataclass(frozen=True)
class ComponentPCA:
    """One grouping factor's components, as R's prcomp: ``sdev`` and ``rotation`` (columns
    the components, rows the factor's random effects ``names``)."""

    group: str
    names: list[str]
    sdev: np.ndarray
    rotation: np.ndarray

    def importance(self) -> pd.DataFrame:
        """summary(prcomp)'s importance table: the sds, and the proportions of variance
        (rounded to 5 decimals, as R does) and their cumulative sums."""
        var = self.sdev**2
        share = var / var.sum() if var.sum() > 0 else np.full(len(var), np.nan)
        return pd.DataFrame([self.sdev, np.round(share, 5), np.round(np.cumsum(share), 5)],
                            index=IMPORTANCE_ROWS,
                            columns=[f"PC{k + 1}" for k in range(len(self.sdev))])

    def print_lines(self) -> list[str]:
        """print.prcomp: the standard deviations, then the rotation (7 significant digits)."""
        p = len(self.sdev)
        lines = [f"Standard deviations (1, .., p={p}):",
                 *_vector_lines(format_numbers(self.sdev, 7)), "",
                 f"Rotation (n x k) = ({p} x {p}):"]
        cols = [format_numbers(self.rotation[:, j], 7) for j in range(p)]
        cells = [[cols[j][i] for j in range(p)] for i in range(p)]
        return lines + print_matrix(cells, [f"[,{j + 1}]" for j in range(p)],
                                    [f"[{i + 1},]" for i in range(p)], right=True) + [""]

    def summary_lines(self) -> list[str]:
        """print(summary(prcomp)): the importance table, 4 significant digits a column."""
        table = self.importance().to_numpy()
        p = table.shape[1]
        cols = [format_numbers(table[:, j], 4) for j in range(p)]
        cells = [[cols[j][i] for j in range(p)] for i in range(3)]
        return ["Importance of components:"] + print_matrix(
            cells, [f"[,{j + 1}]" for j in range(p)], IMPORTANCE_ROWS, right=True) + [""]


class RePCA(dict):
    """``rePCA(m)``: a ComponentPCA per grouping factor, by name; prints as lme4's."""

    def __repr__(self) -> str:
        lines = []
        for name, pca in self.items():
            lines += [f"${name}", *pca.print_lines()]
        return "\n".join(lines)

    def summary(self) -> RePCASummary:
        return RePCASummary(self)


class RePCASummary:
    """``summary(rePCA(m))``: the importance tables (``tables`` by grouping factor)."""

    def __init__(self, pcas: RePCA):
        self.pcas = pcas
        self.tables = {name: pca.importance() for name, pca in pcas.items()}

    def __repr__(self) -> str:
        lines = []
        for name, pca in self.pcas.items():
            lines += [f"${name}", *pca.summary_lines()]
        return "\n".join(lines)


def repca(templates: list[tuple[str, list[str], np.ndarray]]) -> RePCA:
    """The components of each grouping factor from its terms' (group, effect names,
    template) in model order: a factor's terms form one block diagonal (lme4's bdiag of
    getME(m, "Tlist") by name), in the order the factors first appear."""
    blocks: dict[str, tuple[list[str], list[np.ndarray]]] = {}
    for group, names, T in templates:
        entry = blocks.setdefault(group, ([], []))
        entry[0].extend(names)
        entry[1].append(np.asarray(T, dtype=np.float64))
    out = RePCA()
    for group, (names, mats) in blocks.items():
        U, s, _ = np.linalg.svd(sla.block_diag(*mats))
        out[group] = ComponentPCA(group, names, s, U)
    return out


def _vector_lines(cells: list[str], width: int = 80) -> list[str]:
    """R's print of an unnamed vector: "[i]" then as many fields as fit in ``width``."""
    label = len(f"[{len(cells)}]")
    w = max(len(c) for c in cells)
    per_line = max(1, (width - label) // (w + 1))
    return [f"[{start + 1}]".rjust(label) + "".join(" " + c.rjust(w)
                                                     for c in cells[start:start + per_line])
            for start in range(0, len(cells), per_line)]


__all__ = ["ComponentPCA", "RePCA", "RePCASummary", "repca"]
