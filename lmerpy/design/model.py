"""``design(formula, data)``: everything an engine needs, as numbers (formula -> design)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError, FormulaError, ModelError, warn
from ..formula import nodes as N
from ..formula import parse
from ..formula.terms import Formula, Term, TermList
from .encoding import MatrixEncoder, contrast_coding
from .evaluate import LITERAL_NAMES, evaluate
from .frame import check_frame, drop_missing, require_columns
from .nn import NNInput, nn_input
from .random import RandomTermDesign, build_Z, grouping_codes, random_design, rbf_design


@dataclass
class NewDataDesign:
    """A model's encodings applied to new rows (for prediction)."""

    X: np.ndarray
    random: list[sp.csc_matrix]        # Z_k of the new rows in the training columns
    codes: list[np.ndarray]            # level codes per random term (-1: unseen level)
    unseen: dict[str, list[str]]       # grouping factor -> levels not seen in training
    nn: list[np.ndarray]
    offset: np.ndarray | None
    index: pd.Index
    coords: list[np.ndarray | None]     # spatial terms: the new rows' coordinates
    kept: np.ndarray                   # which of the given rows these are (no NA in a used column)


@dataclass
class ModelDesign:
    """The numbers of one model: y, X, nn inputs and the random terms with Z_k and Λ_k(θ)."""

    formula: Formula
    y: np.ndarray                      # n, or n × 2 for cbind(successes, failures)
    X: np.ndarray                      # n × p fixed-effects matrix
    X_names: list[str]
    random: list[RandomTermDesign]
    nn: list[NNInput]
    offset: np.ndarray | None
    n_dropped: int
    index: pd.Index                    # the training rows used (data's index)
    dropped_index: pd.Index
    fixed_encoder: MatrixEncoder = field(repr=False)

    @property
    def n(self) -> int:
        return len(self.index)

    @property
    def Z(self) -> sp.csc_matrix:
        """All random terms' columns side by side (n × Σ q_k p_k)."""
        if not self.random:
            return sp.csc_matrix((self.n, 0))
        return sp.hstack([r.Z for r in self.random], format="csc")

    @property
    def theta_sizes(self) -> list[int]:
        return [r.cov.n_theta for r in self.random]

    def theta0(self) -> np.ndarray:
        return np.concatenate([r.cov.theta0() for r in self.random] or [np.zeros(0)])

    def theta_lower(self) -> np.ndarray:
        return np.concatenate([r.cov.lower() for r in self.random] or [np.zeros(0)])

    def theta_names(self) -> list[str]:
        """θ's element names as lme4's ``names(getME(m, "theta"))``, e.g.
        ``Subject.Days.(Intercept)``; an rbf term's are ``<term>.sd`` and
        ``<term>.lengthscale``. Made unique as R's ``make.unique`` (``(1 | g) + (1 | g)``
        names two θ ``g.(Intercept)``), so that they can key columns."""
        return make_unique([f"{r.group}.{name}" for r in self.random
                            for name in r.theta_names()])

    def split_theta(self, theta: np.ndarray) -> list[np.ndarray]:
        theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
        bounds = np.cumsum([0] + self.theta_sizes)
        return [np.asarray(theta[a:b], dtype=np.float64) for a, b in zip(bounds, bounds[1:])]

    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """lme4's variance parameters: per θ element the standard deviation or correlation
        it stands for (.sig01, ...), then σ (.sigma)."""
        parts = [r.cov.to_sdcor(th, sigma) for r, th in zip(self.random, self.split_theta(theta))]
        return np.concatenate(parts + [np.array([sigma])])

    def theta_of_sdcor(self, values: np.ndarray) -> np.ndarray | None:
        """The inverse of ``sdcor``: θ for these standard deviations, correlations and σ,
        or None when σ ≤ 0 or a term's correlations are not a valid matrix."""
        sigma = values[-1]
        if not sigma > 0:
            return None
        out = []
        bounds = np.cumsum([0] + self.theta_sizes)
        for r, a, b in zip(self.random, bounds, bounds[1:]):
            theta = r.cov.from_sdcor(values[a:b], sigma)
            if theta is None:
                return None
            out.append(theta)
        return np.concatenate(out)

    def sdcor_kinds(self) -> list[str]:
        """What each element of ``sdcor`` is: "sd", "cor", "lengthscale", then "sigma"."""
        return [k for r in self.random for k in r.cov.sdcor_kinds()] + ["sigma"]

    def Lambda(self, theta: np.ndarray) -> sp.csc_matrix:
        """The relative covariance factor Λ(θ): block diagonal over the random terms."""
        blocks = [r.Lambda(t) for r, t in zip(self.random, self.split_theta(theta))]
        if not blocks:
            return sp.csc_matrix((0, 0))
        return sp.block_diag(blocks, format="csc")

    @property
    def ngrps(self) -> dict[str, int]:
        return {r.group: r.q for r in self.random}

    def for_new_data(self, newdata: pd.DataFrame, na_action: str = "pass"
                     ) -> NewDataDesign | None:
        """Apply the training encodings to the rows of ``newdata`` without missing values
        (``na_action``: "pass" sets the others aside, "omit" drops them with a warning,
        "raise" refuses them); unseen levels are reported by name. None: "pass", and no
        row is complete."""
        newdata = check_frame(newdata, "newdata")
        needed = [n for n in _rhs_variables(self.formula) if n not in LITERAL_NAMES]
        require_columns(newdata, needed, "newdata")
        clean = drop_missing(newdata, needed, na_action, ("pass", "omit", "raise"))
        if not clean.kept.any():
            return None
        data = clean.data
        X = self.fixed_encoder.transform(data)
        Zs, codes_all, unseen, coords_all = [], [], {}, []
        for r in self.random:
            coords = None
            if r.encoder is None:  # rbf: new locations are kriged from the training ones
                coords = np.column_stack([data[c].to_numpy(float) for c in r.term.coords])
                lookup = {tuple(row): i for i, row in enumerate(r.cov.coords)}
                codes = np.array([lookup.get(tuple(row), -1) for row in coords])
                Xk = np.ones((len(data), 1))
            else:
                codes, _ = grouping_codes(data, r.term.group, r.levels)
                Xk = r.encoder.transform(data)
                missing = sorted({str(v) for v in _group_labels(data, r.term.group)[codes < 0]})
                if missing:
                    unseen[r.group] = missing
            codes_all.append(codes)
            coords_all.append(coords)
            Zs.append(build_Z(codes, Xk, r.q))
        nns = [inp.transform(data) for inp in self.nn]
        offset = _offset(self.formula, data)
        return NewDataDesign(X, Zs, codes_all, unseen, nns, offset, data.index, coords_all,
                             clean.kept)


def _group_labels(data: pd.DataFrame, group: tuple[str, ...]) -> np.ndarray:
    from .encoding import as_labels

    parts = [as_labels(data[g]) for g in group]
    if len(parts) == 1:
        return parts[0]
    return np.array([":".join(p) for p in zip(*parts)], dtype=object)


def _rhs_variables(formula: Formula) -> list[str]:
    rhs = Formula(None, formula.fixed, formula.random, formula.nn, formula.rbf, formula.offsets)
    return rhs.variables()


def _offset(formula: Formula, data: pd.DataFrame) -> np.ndarray | None:
    if not formula.offsets:
        return None
    return sum(evaluate(o, data, f"offset({o})") for o in formula.offsets)


def _expand_dot(formula: Formula, data: pd.DataFrame, reserved: list[str]) -> Formula:
    """Replace '.' by every column the formula does not otherwise use (R's meaning), in the
    fixed part or in one nn() term's inputs (``nn(.)``: every other column into the
    network); ``reserved`` columns (prior weights) never count as predictors."""
    lists = [("the fixed part", formula.fixed, formula.dot_excluded)] + [
        (str(t), t.inputs, t.dot_excluded) for t in formula.nn]
    for _, terms, _ in lists:
        for t in terms.terms:
            if any(isinstance(f, N.Dot) for f in t.factors) and not t.is_dot:
                raise FormulaError("'.' cannot be part of an interaction")
    dotted = [(where, terms, excluded) for where, terms, excluded in lists
              if any(t.is_dot for t in terms.terms)]
    if not dotted:
        return formula
    if len(dotted) > 1:
        raise FormulaError(f"'.' (every other column) can stand in one place only, not in "
                           f"{' and '.join(where for where, _, _ in dotted)}")
    where, terms_in, excluded = dotted[0]
    used = set(formula.variables()) | set(excluded) | set(reserved)
    others = [Term((N.Name(str(c)),)) for c in data.columns if str(c) not in used]
    terms: list[Term] = []
    for t in terms_in.terms:
        for new in (others if t.is_dot else [t]):
            if new not in terms:
                terms.append(new)
    terms.sort(key=lambda t: t.degree)
    expanded = TermList(terms_in.intercept, tuple(terms))
    if terms_in is formula.fixed:
        return replace(formula, fixed=expanded)
    if not terms:
        raise DataError(f"{where}: '.' leaves no column for the network (every column is "
                        f"used elsewhere in the formula)")
    return replace(formula, nn=tuple(replace(t, inputs=expanded, dot_excluded=())
                                     if t.inputs is terms_in else t for t in formula.nn))


def _drop_response(formula: Formula) -> Formula:
    """R's model.matrix: the response's own term on the right-hand side (``y ~ x + y``) is
    dropped with a warning (an interaction that holds it, ``x:y``, stays, as in R); from an
    nn() term's inputs every term that holds the response is dropped, since the network
    would learn the response from itself."""
    response = formula.response
    if response is None:
        return formula

    def keep(terms: TermList, own_term_only: bool) -> TermList:
        return TermList(terms.intercept, tuple(
            t for t in terms.terms if response not in t.factors
            or (own_term_only and t.degree > 1)))

    fixed, nns = keep(formula.fixed, True), []
    dropped = [str(t) for t in formula.fixed.terms if t not in fixed.terms]
    for term in formula.nn:
        inputs = keep(term.inputs, False)
        if inputs.terms != term.inputs.terms:
            dropped.append(f"{term} inputs")
            if not inputs.terms:
                raise FormulaError(f"{term} has no inputs but the response '{response}', "
                                   f"which cannot be a predictor of itself")
            term = replace(term, inputs=inputs)
        nns.append(term)
    if not dropped:
        return formula
    warn(f"the response '{response}' appeared on the right-hand side and was dropped "
         f"(from {', '.join(dropped)})")
    return replace(formula, fixed=fixed, nn=tuple(nns))


def _response(formula: Formula, data: pd.DataFrame) -> np.ndarray:
    node = formula.response
    if node is None:
        raise FormulaError("the formula has no response (nothing on the left of '~')")
    if isinstance(node, N.Call) and node.fn == "cbind":
        cols = [evaluate(a, data, str(a)) for a in node.args]
        return np.column_stack(cols).astype(np.float64)
    y = evaluate(node, data, str(node))
    if y.dtype == bool:
        y = y.astype(np.float64)
    return y


def lme4_term_order(random: list[RandomTermDesign]) -> list[RandomTermDesign]:
    """lme4's mkReTrms: if any later term has more levels, order terms by decreasing levels.

    (``rev(order(nl))``: ties end up in reverse order, exactly as lme4 does.)
    """
    nl = [r.q for r in random]
    if not any(b > a for a, b in zip(nl, nl[1:])):
        return random
    order = list(reversed(np.argsort(nl, kind="stable")))
    return [random[i] for i in order]


def design(formula: Formula | str, data: pd.DataFrame, na_action: str = "omit",
           require_response: bool = True, extra_columns: list[str] | None = None,
           contrasts: dict[str, str] | None = None) -> ModelDesign:
    """Evaluate a formula on a DataFrame: y, X, nn inputs and random terms.

    ``extra_columns`` (e.g. prior weights) take part in dropping rows with missing values;
    ``contrasts`` codes the fixed effects' factors by name, as R's ``contrasts=`` (e.g.
    ``{"A": "contr.sum"}``).
    """
    codings = contrast_coding(contrasts)
    if isinstance(formula, str):
        formula = parse(formula)
    formula = _drop_response(formula)
    data = check_frame(data)
    if not all(isinstance(c, str) for c in data.columns):
        data = data.rename(columns=str)  # a renamed copy: the caller's frame is left alone
    needed = [n for n in formula.variables() if n not in LITERAL_NAMES or n in data.columns]
    require_columns(data, needed)
    formula = _expand_dot(formula, data, list(extra_columns or []))
    needed = [n for n in formula.variables() if n not in LITERAL_NAMES or n in data.columns]
    clean = drop_missing(data, needed + list(extra_columns or []), na_action)
    data = clean.data
    y = _response(formula, data) if (require_response or formula.response is not None) \
        else np.zeros(len(data))
    fixed = MatrixEncoder(formula.fixed, "fixed effects", codings)
    X = fixed.fit(data)
    random = [random_design(t, data) for t in formula.random]
    random = lme4_term_order(random)
    random += [rbf_design(t, data) for t in formula.rbf]
    labels = [r.group for r in random]
    for t in formula.rbf:
        if labels.count(t.group_name) > 1:
            raise ModelError(f"{t}: another random term is labelled '{t.group_name}' too; "
                             f"give each spatial term its own name=")
    for r in random:
        if r.q < 1:
            raise ModelError(f"grouping factor '{r.group}' has no levels")
    nns = [nn_input(t, data) for t in formula.nn]
    offset = _offset(formula, data)
    if len(data) == 0:
        raise DataError("no rows left after dropping missing values")
    return ModelDesign(formula, y, X, fixed.names, random, nns, offset, clean.n_dropped,
                       data.index, clean.dropped_index, fixed)


def make_unique(names: list[str]) -> list[str]:
    """R's ``make.unique``: a repeated name gets ``.1``, ``.2``, ..., skipping names taken."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            while f"{name}.{seen[name]}" in names:
                seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out
