"""The scale emmeans reports a model's means on: a GLMM's link, or a transformed response
of a linear mixed model (``log(y)``, ``log10(y)``, ``log2(y)``, ``log(y + c)``,
``log1p(y)``, ``sqrt(y)``), with the inverse and derivative that back-transform means and
standard errors (the delta method), and whether differences on it back-transform to ratios
(the logarithms: odds ratios under a logit link)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..formula import nodes as N


@dataclass(frozen=True)
class Scale:
    """A scale: its name as emmeans prints it, the inverse transformation and its
    derivative, the column name of back-transformed means, the base whose power turns a
    difference into a ratio (None: differences stay on the scale) and the name of the
    differences' scale."""

    name: str
    inverse: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]
    response_name: str = "response"
    ratio_base: float | None = None
    difference_name: str | None = None

    @property
    def differences(self) -> str:
        return self.difference_name or self.name

    @property
    def ratio_name(self) -> str:
        return "odds.ratio" if self.name == "logit" else "ratio"


def model_scale(m) -> Scale | None:
    """The scale of ``m``'s linear predictor, or None where it is the response's own."""
    if m.family is not None:
        link = m.family.link
        if link.name == "identity":
            return None
        base = math.e if link.name in ("log", "logit") else None
        return Scale(link.name, link.inverse, link.mu_eta,
                     {"binomial": "prob", "poisson": "rate"}.get(m.family.family,
                                                                 "response"),
                     base, "log odds ratio" if link.name == "logit" else None)
    return _response_transformation(m.formula.response)


def _response_transformation(node) -> Scale | None:
    if not isinstance(node, N.Call) or len(node.args) != 1 or node.kwargs:
        return None
    arg, fn = node.args[0], node.fn
    if fn in ("log", "log2", "log10") and isinstance(arg, N.Name):
        base = {"log": math.e, "log2": 2.0, "log10": 10.0}[fn]
        return Scale(fn, lambda x: base**x, lambda x: math.log(base) * base**x,
                     ratio_base=base)
    if fn == "log" and isinstance(arg, N.BinOp) and arg.op == "+":
        constant = [s.value for s in (arg.left, arg.right) if isinstance(s, N.Number)]
        names = [s for s in (arg.left, arg.right) if isinstance(s, N.Name)]
        if len(constant) == 1 and len(names) == 1:
            c = constant[0]
            return Scale(f"log(mu + {c:g})", lambda x: np.exp(x) - c, np.exp,
                         ratio_base=math.e, difference_name="log")
    if fn == "log1p" and isinstance(arg, N.Name):
        return Scale("log1p", np.expm1, np.exp)
    if fn == "sqrt" and isinstance(arg, N.Name):
        return Scale("sqrt", np.square, lambda x: 2 * x)
    return None


__all__ = ["Scale", "model_scale"]
