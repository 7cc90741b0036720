"""Immutable term objects: what a formula means, before any data is seen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import nodes as N
from .functions import format_literal


@dataclass(frozen=True, eq=False)
class Term:
    """One model-matrix term: a factor (``x``, ``I(t^2)``) or an interaction of factors.

    As in R, ``a:b`` and ``b:a`` are the same term: equality ignores factor order, which only
    decides how the term is printed (R: the order in which the variables first appear).
    """

    factors: tuple[N.Node, ...]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Term) and frozenset(self.factors) == frozenset(other.factors)

    def __hash__(self) -> int:
        return hash(frozenset(self.factors))

    def __str__(self) -> str:
        return ":".join(str(f) for f in self.factors)

    @property
    def degree(self) -> int:
        return len(self.factors)

    @property
    def is_dot(self) -> bool:
        return len(self.factors) == 1 and isinstance(self.factors[0], N.Dot)


@dataclass(frozen=True)
class TermList:
    """R's ``terms`` object: an intercept flag and ordered terms (main effects first)."""

    intercept: bool
    terms: tuple[Term, ...] = ()

    def __str__(self) -> str:
        return " + ".join(["1" if self.intercept else "0"] + [str(t) for t in self.terms])

    def variables(self) -> list[str]:
        """Column names the terms read, in order of first appearance."""
        seen: dict[str, None] = {}
        for t in self.terms:
            for f in t.factors:
                for name in N.names_in(f):
                    seen.setdefault(name, None)
        return list(seen)


@dataclass(frozen=True)
class RandomTerm:
    """``(expr | group)`` after lme4's expansions: one grouping factor, one covariance block.

    ``group`` is the tuple of columns whose interaction forms the grouping factor, in lme4's
    order (``(1 | a/b)`` gives ``b:a`` = ``("b", "a")``).
    """

    expr: TermList
    group: tuple[str, ...]

    @property
    def group_name(self) -> str:
        return ":".join(self.group)

    def __str__(self) -> str:
        group = ":".join(str(N.Name(g)) for g in self.group)
        return f"({self.expr} | {group})"


@dataclass(frozen=True)
class NNTerm:
    """``nn(inputs, key=literal, ...)``: a neural network over the input terms."""

    inputs: TermList
    options: tuple[tuple[str, Any], ...] = ()
    dot_excluded: tuple[str, ...] = ()  # nn(. - x): columns the '.' leaves out

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    def __str__(self) -> str:
        inner = " + ".join(str(t) for t in self.inputs.terms)
        inner += "".join(f" - {N.Name(c)}" for c in self.dot_excluded)
        opts = "".join(f", {k} = {format_literal(v)}" for k, v in self.options)
        return f"nn({inner}{opts})"


@dataclass(frozen=True)
class RBFTerm:
    """``rbf(c1, c2, ..., key=literal)``: a spatial effect with an RBF kernel over locations."""

    coords: tuple[str, ...]
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    @property
    def group_name(self) -> str:
        """The term's label in VarCorr(), ranef() and ngrps: ``name=`` if given."""
        name = self.option("name")
        return name if isinstance(name, str) and name else f"rbf({', '.join(self.coords)})"

    def __str__(self) -> str:
        inner = ", ".join(str(N.Name(c)) for c in self.coords)
        opts = "".join(f", {k} = {format_literal(v)}" for k, v in self.options)
        return f"rbf({inner}{opts})"


@dataclass(frozen=True)
class Formula:
    """A parsed formula. ``str()`` is the canonical form, which re-parses to an equal Formula."""

    response: N.Node | None
    fixed: TermList
    random: tuple[RandomTerm, ...] = ()
    nn: tuple[NNTerm, ...] = ()
    rbf: tuple[RBFTerm, ...] = ()
    offsets: tuple[N.Node, ...] = ()
    text: str = field(default="", compare=False)
    dot_excluded: tuple[str, ...] = ()  # `y ~ . - x`: columns the '.' leaves out
    as_written: str = field(default="", compare=False)  # R's deparse, bars expanded as lme4
    deparsed: str = field(default="", compare=False)  # R's deparse, (x || g) as written

    def __str__(self) -> str:
        parts = [str(self.fixed) + "".join(f" - {N.Name(c)}" for c in self.dot_excluded)]
        parts += [f"offset({o})" for o in self.offsets]
        parts += [str(t) for t in self.nn]
        parts += [str(t) for t in self.random]
        parts += [str(t) for t in self.rbf]
        lhs = f"{self.response} " if self.response is not None else ""
        return f"{lhs}~ " + " + ".join(parts)

    @property
    def has_nn(self) -> bool:
        return bool(self.nn)

    @property
    def is_mixed(self) -> bool:
        return bool(self.random or self.rbf)

    def variables(self) -> list[str]:
        """Every column the formula reads, in order of first appearance."""
        seen: dict[str, None] = {}

        def add(names):
            for n in names:
                seen.setdefault(n, None)

        if self.response is not None:
            add(N.names_in(self.response))
        add(self.fixed.variables())
        for o in self.offsets:
            add(N.names_in(o))
        for t in self.nn:
            add(t.inputs.variables())
        for r in self.random:
            add(r.expr.variables())
            add(r.group)
        for s in self.rbf:
            add(s.coords)
        return list(seen)
