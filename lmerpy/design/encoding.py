"""Model matrices for a TermList through formulaic, with R's column names.

Each factor of the terms is first turned into one safe alias column (``_v0``, ``_v1``, ...):
columns are copied, expressions are computed by the whitelist evaluator, categorical values
are recoded to ``L0``, ``L1``, ... in R's level order. formulaic then only ever sees a
formula made of those aliases and its own stateful transforms (poly, scale, center, C), so
no user text reaches it, and its column names can be mapped back to R's exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import Formula as FFormula
from formulaic import ModelSpec, model_matrix

from ..errors import DataError, FormulaError
from ..formula import nodes as N
from ..formula.expand import contrast_name, poly_degree
from ..formula.functions import CATEGORICAL, TRANSFORMS, literal
from ..formula.terms import TermList
from .evaluate import evaluate, is_numeric

_PIECE = re.compile(r"^(?P<expr>.*?)(\[(?P<tag>[^\]]*)\])?$")


def level_order(series: pd.Series) -> list[str]:
    """A factor's levels as R orders them: category order, else numeric or string sort.

    Levels absent from the data are dropped, as R's model frames do.
    """
    present = series.dropna()
    if isinstance(series.dtype, pd.CategoricalDtype):
        used = set(present.astype(object))
        return [_label(c) for c in series.cat.categories if c in used]
    if pd.api.types.is_bool_dtype(series):
        return [_label(v) for v in (False, True) if v in set(present)]
    values = pd.unique(present.to_numpy())
    if is_numeric(series):
        return [_label(v) for v in sorted(values)]
    return sorted({_label(v) for v in values})


def _label(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def as_labels(series: pd.Series | np.ndarray) -> np.ndarray:
    """Values as R level labels (strings)."""
    values = series.astype(object) if isinstance(series, pd.Series) else series
    return np.array([_label(v) for v in np.asarray(values, dtype=object)], dtype=object)


@dataclass
class _Factor:
    node: N.Node
    label: str          # R's name of the factor, e.g. "I(Days^2)"
    alias: str          # safe column name handed to formulaic
    expr: str           # formulaic expression for the factor
    levels: list[str] | None = None   # for categorical factors
    contrast: str | None = None


def _is_categorical(series: pd.Series) -> bool:
    return not is_numeric(series)


class MatrixEncoder:
    """Builds the model matrix of a TermList on training data and re-applies it to new data."""

    def __init__(self, terms: TermList, what: str = "fixed effects"):
        self.terms = terms
        self.what = what
        self.factors: list[_Factor] = []
        self.spec: ModelSpec | None = None
        self.names: list[str] = []
        self.term_of_column: list[str] = []

    # -- training ---------------------------------------------------------------------------
    def fit(self, data: pd.DataFrame) -> np.ndarray:
        """Encode ``data``; remembers levels and transform statistics for new data."""
        for term in self.terms.terms:
            for f in term.factors:
                if all(f != g.node for g in self.factors):
                    self.factors.append(self._make_factor(f, data))
        frame = self._alias_frame(data)
        ff = self._formulaic_formula()
        mm = model_matrix(FFormula(ff, _ordering="none"), frame, na_action="raise",
                          output="numpy")
        self.spec = mm.model_spec
        self.names, self.term_of_column = self._r_names(self.spec)
        return np.asarray(mm, dtype=np.float64).reshape(len(data), -1)

    def _make_factor(self, node: N.Node, data: pd.DataFrame) -> _Factor:
        alias = f"_v{len(self.factors)}"
        label = str(node)
        if isinstance(node, N.Dot):
            raise FormulaError("'.' must be expanded before encoding")
        if isinstance(node, N.Name):
            series = data[node.id]
            if _is_categorical(series):
                return _Factor(node, label, alias, f"C({alias}, contr.treatment)",
                               level_order(series), "contr.treatment")
            return _Factor(node, label, alias, alias)
        assert isinstance(node, N.Call)
        if node.fn in CATEGORICAL:
            arg = node.args[0]
            series = data[arg.id] if isinstance(arg, N.Name) else pd.Series(
                evaluate(arg, data, label), index=data.index)
            contrast = "contr.treatment"
            extra = list(node.args[1:]) + [v for _, v in node.kwargs]
            if extra:
                contrast = contrast_name(extra[0])
            return _Factor(node, label, alias, f"C({alias}, {contrast})", level_order(series),
                           contrast)
        if node.fn in TRANSFORMS:
            if node.fn == "poly":
                raw = bool(literal(dict(node.kwargs).get("raw", N.Name("FALSE")), "raw"))
                expr = f"poly({alias}, degree={poly_degree(node)}, raw={raw})"
            elif node.fn == "scale":
                kw = dict(node.kwargs)
                center = bool(literal(kw.get("center", N.Name("TRUE")), "center"))
                scale = bool(literal(kw.get("scale", N.Name("TRUE")), "scale"))
                expr = f"scale({alias}, center={center}, scale={scale})"
            else:
                expr = f"center({alias})"
            return _Factor(node, label, alias, expr)
        values = evaluate(node, data, label)
        if values.dtype == bool:
            return _Factor(node, label, alias, f"C({alias}, contr.treatment)",
                           level_order(pd.Series(values)), "contr.treatment")
        return _Factor(node, label, alias, alias)

    def _alias_frame(self, data: pd.DataFrame) -> pd.DataFrame:
        cols = {}
        for f in self.factors:
            node = f.node
            if isinstance(node, N.Call) and (node.fn in CATEGORICAL or node.fn in TRANSFORMS):
                inner = node.args[0]
            else:
                inner = node
            if f.levels is not None:
                if isinstance(inner, N.Name):
                    raw = data[inner.id]
                else:
                    raw = pd.Series(evaluate(inner, data, f.label), index=data.index)
                labels = as_labels(raw)
                lookup = {lvl: i for i, lvl in enumerate(f.levels)}
                codes = np.array([lookup.get(v, -1) for v in labels])
                if (codes < 0).any():
                    unseen = sorted({str(v) for v in labels[codes < 0]})
                    col = inner.id if isinstance(inner, N.Name) else f.label
                    raise DataError(f"'{col}' has level(s) not seen in the training data: "
                                    f"{', '.join(unseen[:10])}"
                                    + (" ..." if len(unseen) > 10 else ""))
                cats = [f"L{i}" for i in range(len(f.levels))]
                cols[f.alias] = pd.Categorical.from_codes(codes, categories=cats)
            elif isinstance(inner, N.Name):
                from .evaluate import numeric_column

                cols[f.alias] = numeric_column(data, inner.id, f.label)
            else:
                cols[f.alias] = evaluate(inner, data, f.label)
        return pd.DataFrame(cols, index=data.index)

    def _formulaic_formula(self) -> str:
        by_node = {f.node: f for f in self.factors}
        parts = ["1" if self.terms.intercept else "0"]
        for term in self.terms.terms:
            parts.append(":".join(by_node[f].expr for f in term.factors))
        return " + ".join(parts)

    def _r_names(self, spec: ModelSpec) -> tuple[list[str], list[str]]:
        by_expr = {f.expr: f for f in self.factors}
        names: list[str] = []
        terms: list[str] = []
        r_terms = {self._formulaic_term(t): str(t) for t in self.terms.terms}
        for block in spec.structure:
            term_label = r_terms.get(str(block.term), "(Intercept)")
            for col in block.columns:
                if col == "Intercept":
                    names.append("(Intercept)")
                else:
                    names.append(":".join(self._r_piece(p, by_expr) for p in col.split(":")))
                terms.append(term_label)
        return names, terms

    def _formulaic_term(self, term) -> str:
        by_node = {f.node: f for f in self.factors}
        return ":".join(by_node[f].expr for f in term.factors)

    @staticmethod
    def _r_piece(piece: str, by_expr: dict[str, _Factor]) -> str:
        m = _PIECE.match(piece)
        expr, tag = m.group("expr"), m.group("tag")
        f = by_expr.get(expr)
        if f is None:  # formulaic spelled the expression differently; match on the alias
            f = next(g for g in by_expr.values() if expr.startswith(g.expr.split(",")[0]))
        if tag is None:
            return f.label
        if f.levels is None:  # poly(x, 2)[1] -> poly(x, 2)1
            return f.label + tag
        kind, _, code = tag.rpartition(".")
        index = int(code[1:])
        if kind in {"S", "H"}:  # R numbers sum / Helmert contrast columns 1, 2, ...
            return f.label + str(index + 1 if kind == "S" else index)
        return f.label + f.levels[index]

    # -- new data -----------------------------------------------------------------------------
    def transform(self, data: pd.DataFrame) -> np.ndarray:
        """The same encoding (levels, contrasts, transform statistics) applied to new rows."""
        assert self.spec is not None, "fit() first"
        frame = self._alias_frame(data)
        mm = self.spec.get_model_matrix(frame, output="numpy", na_action="raise")
        return np.asarray(mm, dtype=np.float64).reshape(len(data), -1)
