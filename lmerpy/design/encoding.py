"""Model matrices for a TermList with R's model.matrix rules, names and column order.

formulaic supplies the pieces: contrast coding matrices (treatment, sum, Helmert,
polynomial) and the stateful transforms poly(), scale(), center(), whose training
statistics are kept for new data. lmerpy assembles terms from them with R's rule for when a
factor in a term is coded by contrasts or by indicators (R's ``TermCode``, "Statistical
Models in S" p. 38): by contrasts if the term without that factor is empty or contained in
an earlier term, else by indicators; without an intercept the first factor is coded by
indicators. Columns of an interaction vary fastest in its first factor, as R's do.
No expression is ever handed to ``eval``: factors are computed by the whitelist evaluator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from formulaic.transforms import center as f_center
from formulaic.transforms import poly as f_poly
from formulaic.transforms import scale as f_scale
from formulaic.transforms.contrasts import (
    HelmertContrasts,
    PolyContrasts,
    SumContrasts,
    TreatmentContrasts,
)

from ..errors import DataError, ModelError, warn
from ..formula import nodes as N
from ..formula.expand import contrast_name, poly_degree
from ..formula.functions import CATEGORICAL, CONTRASTS, TRANSFORMS, literal
from ..formula.terms import TermList
from .evaluate import check_column_type, evaluate, is_numeric, numeric_column

_CONTRASTS = {"contr.treatment": TreatmentContrasts, "contr.sum": SumContrasts,
              "contr.helmert": HelmertContrasts, "contr.poly": PolyContrasts}


def level_order(series: pd.Series) -> list[str]:
    """A factor's levels as R orders them: category order, else numeric or string sort.

    Levels absent from the data are dropped, as R's model frames do.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        used = np.zeros(len(series.cat.categories), dtype=bool)
        used[codes[codes >= 0]] = True
        return [_label(c) for c, u in zip(series.cat.categories, used) if u]
    present = series.dropna()
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


def as_labels(values) -> np.ndarray:
    """Values as R level labels (strings)."""
    if isinstance(values, pd.Series):
        values = values.astype(object).to_numpy()
    return np.array([_label(v) for v in np.asarray(values, dtype=object)], dtype=object)


def codes_of(values, levels: list[str], column: str) -> np.ndarray:
    """Level index of every value; a DataError names levels the training data did not have."""
    inverse, uniques = pd.factorize(pd.Series(values).astype(object), use_na_sentinel=True)
    lookup = {lvl: i for i, lvl in enumerate(levels)}
    mapped = np.array([lookup.get(v, -1) for v in as_labels(uniques)] + [-1], dtype=np.int64)
    codes = mapped[inverse]
    if (codes < 0).any():
        unseen = sorted({str(u) for u, m in zip(uniques, mapped) if m < 0})
        raise DataError(f"'{column}' has level(s) not seen in the training data: "
                        f"{', '.join(unseen[:10])}" + (" ..." if len(unseen) > 10 else ""))
    return codes


@dataclass
class _Factor:
    """One variable of the terms and how it turns into columns."""

    node: N.Node
    label: str                         # R's name, e.g. "I(Days^2)"
    levels: list[str] | None = None    # categorical factors only
    contrast: str = "contr.treatment"
    state: dict = field(default_factory=dict)   # poly / scale / center statistics

    @property
    def categorical(self) -> bool:
        return self.levels is not None

    def _inner(self) -> N.Node:
        node = self.node
        if isinstance(node, N.Call) and (node.fn in CATEGORICAL or node.fn in TRANSFORMS):
            return node.args[0]
        return node

    def raw(self, data: pd.DataFrame):
        """The variable's values: labels for categoricals, floats otherwise."""
        inner = self._inner()
        if isinstance(inner, N.Name) and inner.id in data.columns:
            if self.categorical:
                return data[inner.id]
            return numeric_column(data, inner.id, self.label)
        return evaluate(inner, data, self.label)

    def columns(self, data: pd.DataFrame, full: bool) -> tuple[np.ndarray, list[str]]:
        """The factor's columns: contrasts (full=False) or indicators (full=True)."""
        values = self.raw(data)
        if self.categorical:
            column = self._inner().id if isinstance(self._inner(), N.Name) else self.label
            codes = codes_of(values, self.levels, column)
            coding = _CONTRASTS[self.contrast]().get_coding_matrix(self.levels,
                                                                   reduced_rank=not full)
            matrix = np.asarray(coding, dtype=np.float64)
            if full:
                names = list(self.levels)
            elif self.contrast in {"contr.sum", "contr.helmert"}:
                names = [str(i + 1) for i in range(matrix.shape[1])]
            elif self.contrast == "contr.poly":
                names = [str(c) for c in coding.columns]
            else:
                names = list(self.levels[1:])
            return matrix[codes], [self.label + n for n in names]
        node = self.node
        if isinstance(node, N.Call) and node.fn == "poly":
            raw = bool(literal(dict(node.kwargs).get("raw", N.Name("FALSE")), "raw"))
            out = np.asarray(f_poly(values, degree=poly_degree(node), raw=raw,
                                    _state=self.state), dtype=np.float64)
            return out, [f"{self.label}{k + 1}" for k in range(out.shape[1])]
        if isinstance(node, N.Call) and node.fn == "scale":
            kw = dict(node.kwargs)
            out = f_scale(values, center=bool(literal(kw.get("center", N.Name("TRUE")), "c")),
                          scale=bool(literal(kw.get("scale", N.Name("TRUE")), "s")),
                          _state=self.state)
            return np.asarray(out, dtype=np.float64).reshape(-1, 1), [self.label]
        if isinstance(node, N.Call) and node.fn == "center":
            out = f_center(values, _state=self.state)
            return np.asarray(out, dtype=np.float64).reshape(-1, 1), [self.label]
        return np.asarray(values, dtype=np.float64).reshape(-1, 1), [self.label]


def _make_factor(node: N.Node, data: pd.DataFrame, contrasts: dict[str, str]) -> _Factor:
    label = str(node)
    if isinstance(node, N.Name):
        series = data[node.id]
        check_column_type(series, node.id)
        if is_numeric(series):
            if node.id in contrasts:
                raise ModelError(f"contrasts: '{node.id}' is numeric, and contrasts apply "
                                 f"only to factors (use factor({node.id}) for a factor)")
            return _Factor(node, label)
        ordered = isinstance(series.dtype, pd.CategoricalDtype) and series.cat.ordered
        return _Factor(node, label, level_order(series), contrasts.get(
            node.id, "contr.poly" if ordered else "contr.treatment"))
    if isinstance(node, N.Call) and node.fn in CATEGORICAL:
        arg = node.args[0]
        series = data[arg.id] if isinstance(arg, N.Name) and arg.id in data.columns else \
            pd.Series(evaluate(arg, data, label), index=data.index)
        extra = list(node.args[1:]) + [v for _, v in node.kwargs]
        ordered = isinstance(series.dtype, pd.CategoricalDtype) and series.cat.ordered
        contrast = contrast_name(extra[0]) if extra else contrasts.get(
            label, "contr.poly" if ordered else "contr.treatment")
        return _Factor(node, label, level_order(series), contrast)
    if isinstance(node, N.Call) and node.fn in TRANSFORMS:
        return _Factor(node, label)
    values = evaluate(node, data, label)
    if values.dtype == bool:  # I(x > 0): a logical, coded like R's FALSE/TRUE factor
        return _Factor(node, label, level_order(pd.Series(values)))
    return _Factor(node, label)


def contrast_coding(contrasts) -> dict[str, str]:
    """R's ``contrasts = list(A = "contr.sum", ...)`` as {factor: coding}: each value
    "contr.treatment", "contr.sum", "contr.helmert" or "contr.poly" (or without "contr.")."""
    if contrasts is None:
        return {}
    if not isinstance(contrasts, dict):
        raise ModelError(f"contrasts must be a dict such as {{'A': 'contr.sum'}}, not "
                         f"{type(contrasts).__name__}")
    out = {}
    for name, value in contrasts.items():
        if not isinstance(value, str) or value not in CONTRASTS:
            raise ModelError(f"contrasts: {value!r} for '{name}' is not a coding (use "
                             f"contr.treatment, contr.sum, contr.helmert or contr.poly)")
        out[str(name)] = CONTRASTS[value]
    return out


class MatrixEncoder:
    """Builds the model matrix of a TermList on training data and re-applies it to new data."""

    def __init__(self, terms: TermList, what: str = "fixed effects",
                 contrasts: dict[str, str] | None = None):
        """``contrasts``: R's ``contrasts=`` argument, a coding per factor by name
        (checked by ``contrast_coding``)."""
        self.terms = terms
        self.what = what
        self.contrasts = dict(contrasts or {})
        self.factors: dict[N.Node, _Factor] = {}
        self.plan: list[list[tuple[_Factor, bool]]] = []   # per term: (factor, indicators?)
        self.names: list[str] = []
        self.term_of_column: list[str] = []

    def fit(self, data: pd.DataFrame) -> np.ndarray:
        """Encode ``data``; remembers levels and transform statistics for new data."""
        for term in self.terms.terms:
            for node in term.factors:
                if node not in self.factors:
                    self.factors[node] = _make_factor(node, data, self.contrasts)
        absent = [name for name in self.contrasts
                  if not any(f.label == name for f in self.factors.values())]
        if absent:  # R's model.matrix: "variable 'A' is absent, its contrast will be ignored"
            warn(f"contrasts for {', '.join(map(repr, absent))} ignored: no such factor in "
                 f"the {self.what}")
        self.plan = self._coding_plan()
        X, self.names, self.term_of_column = self._build(data)
        return X

    def transform(self, data: pd.DataFrame) -> np.ndarray:
        """The same encoding (levels, contrasts, transform statistics) applied to new rows."""
        return self._build(data)[0]

    def indicator_matrix(self, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """R's ``model.matrix(~ 0 + term)`` of each term side by side after the intercept:
        every categorical factor by indicators of all its levels (lmerTest's get_rdX, the
        'complete' design of its type III contrasts)."""
        plan = [[(self.factors[node], self.factors[node].categorical) for node in term.factors]
                for term in self.terms.terms]
        X, names, _ = self._build(data, plan)
        return X, names

    def term_variables(self) -> dict[str, list[tuple[str, bool]]]:
        """Each term's variables as (R's name, categorical?)."""
        return {str(term): [(self.factors[n].label, self.factors[n].categorical)
                            for n in term.factors] for term in self.terms.terms}

    @property
    def treatment_coded(self) -> bool:
        """Every categorical factor coded by contr.treatment (R's default)."""
        return all(f.contrast == "contr.treatment" for f in self.factors.values()
                   if f.categorical)

    def treatment_matrix(self, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """The model matrix with every categorical factor coded by contr.treatment (lmerTest's
        'remake' of X, where type III contrasts are built for other codings)."""
        recoded = {node: replace(f, contrast="contr.treatment") if f.categorical else f
                   for node, f in self.factors.items()}
        plan = [[(recoded[f.node], full) for f, full in coding] for coding in self.plan]
        X, names, _ = self._build(data, plan)
        return X, names

    def _coding_plan(self) -> list[list[tuple[_Factor, bool]]]:
        earlier: list[frozenset] = []
        plan = []
        first_pending = not self.terms.intercept
        for term in self.terms.terms:
            members = frozenset(term.factors)
            coding = []
            for node in term.factors:
                f = self.factors[node]
                rest = members - {node}
                contrasts = not rest or any(rest <= t for t in earlier)
                full = f.categorical and not contrasts
                if first_pending and f.categorical and len(f.levels) > 1:
                    full, first_pending = True, False
                coding.append((f, full))
            plan.append(coding)
            earlier.append(members)
        return plan

    def _build(self, data: pd.DataFrame, plan: list | None = None
               ) -> tuple[np.ndarray, list[str], list[str]]:
        n = len(data)
        blocks = [np.ones((n, 1))] if self.terms.intercept else []
        names = ["(Intercept)"] if self.terms.intercept else []
        terms = ["(Intercept)"] if self.terms.intercept else []
        cache: dict[tuple[int, bool], tuple[np.ndarray, list[str]]] = {}
        for term, coding in zip(self.terms.terms, plan or self.plan):
            M, labels = np.ones((n, 1)), [""]
            for f, full in coding:
                key = (id(f), full)
                if key not in cache:
                    cache[key] = f.columns(data, full)
                B, bnames = cache[key]
                # earlier factors vary fastest, as in R's model.matrix
                M = (B[:, :, None] * M[:, None, :]).reshape(n, -1)
                labels = [f"{a}:{b}" if a else b for b in bnames for a in labels]
            blocks.append(M)
            names += labels
            terms += [str(term)] * len(labels)
        X = np.hstack(blocks) if blocks else np.zeros((n, 0))
        return X, names, terms
