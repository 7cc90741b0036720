"""Coordinates for the inner fits of a variance parameter's profile (engines/profile.py).

Standard deviations, lengthscales and σ are used as they are, within their bounds. The
correlation matrix of an unstructured term is written through the rows of its Cholesky
factor, unit vectors, in hyperspherical angles in [0, π]: every point is a valid correlation
matrix, so no inner fit runs into the edge of the valid set (in sd/cor coordinates, moving one
correlation of a 3×3 matrix can leave it indefinite). A profiled correlation ρ_ab is held
fixed by ordering a and b first: the factor's second row is then (ρ, √(1 − ρ²)), whatever
the other angles are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design.covariance import semidefinite_cholesky

# bounds of each kind of variance parameter on lme4's scale
BOUNDS = {"sd": (0.0, np.inf), "cor": (-1.0, 1.0), "lengthscale": (1e-8, np.inf),
          "sigma": (0.0, np.inf)}


def row_from_angles(phi: np.ndarray) -> np.ndarray:
    """The unit vector (cos φ1, sin φ1 cos φ2, ..., sin φ1 ⋯ sin φi) of length i + 1."""
    out = np.empty(len(phi) + 1)
    s = 1.0
    for k, a in enumerate(phi):
        out[k] = s * np.cos(a)
        s *= np.sin(a)
    out[-1] = s
    return out


def angles_from_row(row: np.ndarray) -> np.ndarray:
    """The inverse of row_from_angles for a unit vector whose last element is ≥ 0."""
    tail = np.sqrt(np.cumsum((row**2)[::-1])[::-1])  # tail[k] = ‖row[k:]‖
    return np.arctan2(tail[1:], row[:-1])


@dataclass(frozen=True)
class CorrelationBlock:
    """One unstructured term's correlations: their positions in the variance parameters."""

    p: int
    at: dict[tuple[int, int], int]  # (row, column), row > column -> position

    def order(self, fixed: int | None) -> np.ndarray:
        """Variables in the order the factor is built: a profiled pair first."""
        for (a, b), i in self.at.items():
            if i == fixed:
                return np.array([b, a] + [k for k in range(self.p) if k not in (a, b)])
        return np.arange(self.p)

    def holds(self, fixed: int | None) -> bool:
        return fixed in self.at.values()


class VarianceCoordinates:
    """Free coordinates u of the inner fit with variance parameter ``fixed`` held at x, and
    back: ``pack(v, fixed)`` gives u, its bounds, from a valid v; ``unpack(u, fixed, x)``
    the parameters. ``fixed = None`` holds none (a GLMM's fixed-effect profiles)."""

    def __init__(self, terms, kinds: list[str], scales: np.ndarray):
        self.kinds = kinds
        self.scales = scales
        self.blocks: list[CorrelationBlock] = []
        start = 0
        for r in terms:
            if "cor" in r.cov.sdcor_kinds():
                rows, cols = r.cov.tril()
                at = {(int(a), int(b)): start + j for j, (a, b) in enumerate(zip(rows, cols))
                      if a != b}
                self.blocks.append(CorrelationBlock(r.cov.p, at))
            start += r.cov.n_theta
        in_blocks = {i for b in self.blocks for i in b.at.values()}
        self.plain = [i for i in range(len(kinds)) if i not in in_blocks]

    def pack(self, v: np.ndarray, fixed: int | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        plain = [i for i in self.plain if i != fixed]
        u = [v[i] / self.scales[i] for i in plain]
        lower = [BOUNDS[self.kinds[i]][0] / self.scales[i] for i in plain]
        upper = [BOUNDS[self.kinds[i]][1] / self.scales[i] for i in plain]
        for block in self.blocks:
            perm = block.order(fixed)
            C = np.eye(block.p)
            for (a, b), i in block.at.items():
                C[a, b] = C[b, a] = v[i]
            L = semidefinite_cholesky(C[np.ix_(perm, perm)])
            if L is None:
                raise ValueError("the start has an indefinite correlation matrix")
            first = 2 if block.holds(fixed) else 1
            for i in range(first, block.p):
                u.extend(angles_from_row(L[i, :i + 1]))
                lower.extend([0.0] * i)
                upper.extend([np.pi] * i)
        return np.array(u), np.array(lower), np.array(upper)

    def unpack(self, u: np.ndarray, fixed: int | None, x: float = np.nan) -> np.ndarray:
        v = np.empty(len(self.kinds))
        if fixed is not None:
            v[fixed] = x
        plain = [i for i in self.plain if i != fixed]
        v[plain] = u[:len(plain)] * self.scales[plain]
        pos = len(plain)
        for block in self.blocks:
            perm = block.order(fixed)
            L = np.zeros((block.p, block.p))
            L[0, 0] = 1.0
            for i in range(1, block.p):
                if i == 1 and block.holds(fixed):
                    L[1, :2] = x, np.sqrt(max(1.0 - x * x, 0.0))
                else:
                    L[i, :i + 1] = row_from_angles(u[pos:pos + i])
                    pos += i
            C = np.empty_like(L)
            C[np.ix_(perm, perm)] = L @ L.T
            for (a, b), i in block.at.items():
                if i != fixed:
                    v[i] = C[a, b]
        return v


__all__ = ["BOUNDS", "CorrelationBlock", "VarianceCoordinates", "angles_from_row",
           "row_from_angles"]
