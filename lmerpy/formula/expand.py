"""Give parsed expressions their formula meaning: R's term algebra and lme4's bar expansions.

R's rules (``?formula``): ``+`` joins terms, ``-`` removes them, ``a:b`` is the interaction,
``a*b = a + b + a:b``, ``a/b = a + a:b``, ``(a + b)^2`` all interactions up to order 2;
``0``/``-1`` drop the intercept. Terms are ordered by degree, then by first appearance, and
the factors inside an interaction by the order the variables first appear (the response
first). lme4's rules: ``(x || g)`` becomes ``(1 | g) + (0 + x | g)``; ``(1 | a/b)`` becomes
``(1 | b:a) + (1 | a)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import FormulaError
from . import nodes as N
from .functions import (
    CATEGORICAL,
    CONTRASTS,
    IDENTITY,
    MATH_FUNCTIONS,
    NN_OPTIONS,
    RBF_OPTIONS,
    RESPONSE_ONLY,
    SPECIAL,
    TRANSFORMS,
    check_arithmetic,
    literal,
    unknown_function,
)
from .terms import Formula, NNTerm, RandomTerm, RBFTerm, Term, TermList

_BARS = {"|", "||"}
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


class _Vars:
    """The order in which factors first appear: decides factor order inside interactions."""

    def __init__(self) -> None:
        self.index: dict[N.Node, int] = {}

    def add(self, node: N.Node) -> int:
        return self.index.setdefault(node, len(self.index))


# A term while expanding: a frozenset of factor nodes.
_T = frozenset


class _Algebra:
    """R's term algebra over one right-hand side (fixed part, a bar's left side, nn inputs)."""

    def __init__(self, vars_: _Vars, where: str) -> None:
        self.vars = vars_
        self.where = where
        self.dot_excluded: list[str] = []  # `. - x`: columns '.' must leave out

    def termlist(self, node: N.Node, intercept: bool = True) -> TermList:
        terms, flag = self.sum(node)
        if flag is not None:
            intercept = flag
        return self.finish(terms, intercept)

    def finish(self, terms: list[frozenset], intercept: bool) -> TermList:
        ordered = sorted(terms, key=len)  # stable: degree, then first appearance
        return TermList(intercept, tuple(
            Term(tuple(sorted(t, key=lambda f: self.vars.index[f]))) for t in ordered))

    # -- sums ------------------------------------------------------------------------------
    def sum(self, node: N.Node) -> tuple[list[frozenset], bool | None]:
        """Apply a chain of '+'/'-' left to right; returns the terms and intercept change."""
        terms: list[frozenset] = []
        intercept: bool | None = None
        for sign, operand in expand_ellipses(flatten_sum(node)):
            if isinstance(operand, N.Number):
                if operand.value not in (0.0, 1.0):
                    raise FormulaError(f"the number {operand} is not a term (only 0 and 1 are)",
                                       operand.pos + 1)
                wants = operand.value == 1.0
                intercept = wants if sign == "+" else not wants
                continue
            part, flag = self.operand(operand)
            if flag is not None:
                intercept = flag if sign == "+" else not flag
            if sign == "+":
                for t in part:
                    if t not in terms:
                        terms.append(t)
            else:
                if any(len(t) == 1 and isinstance(next(iter(t)), N.Dot) for t in terms):
                    for t in part:
                        (f,) = t if len(t) == 1 else (None,)
                        if isinstance(f, N.Name) and f.id not in self.dot_excluded:
                            self.dot_excluded.append(f.id)
                terms = [t for t in terms if t not in part]
        return terms, intercept

    def operand(self, node: N.Node) -> tuple[list[frozenset], bool | None]:
        if isinstance(node, N.Paren):
            inner = node.expr
            if isinstance(inner, N.BinOp) and inner.op in _BARS:
                raise FormulaError(f"a random-effect term cannot be used {self.where}",
                                   node.pos + 1)
            return self.sum(inner)
        if isinstance(node, N.BinOp) and node.op in {"+", "-"}:
            return self.sum(node)
        return self.product(node), None

    # -- products ----------------------------------------------------------------------------
    def product(self, node: N.Node) -> list[frozenset]:
        if isinstance(node, N.BinOp):
            op = node.op
            if op in _BARS:
                raise FormulaError(f"the random-effect bar '{op}' must be inside parentheses, "
                                   f"as in (x {op} g)", node.op_pos + 1)
            if op in {"==", "!=", "<", ">", "<=", ">="}:
                raise FormulaError(f"comparison '{op}' outside I(): write I(a {op} b)",
                                   node.op_pos + 1)
            if op == "^":
                return self.power(node)
            left, right = self.terms_of(node.left), self.terms_of(node.right)
            if op == ":":
                return _unique(a | b for a in left for b in right)
            if op == "*":
                return _unique(left + right + [a | b for a in left for b in right])
            if op == "/":
                whole = frozenset().union(*left) if left else frozenset()
                return _unique(left + [whole | b for b in right])
            raise FormulaError(f"unexpected operator '{op}'", node.op_pos + 1)
        if isinstance(node, N.Unary):
            raise FormulaError(f"unary '{node.op}' is only allowed before a term of a sum",
                               node.pos + 1)
        return [frozenset([self.factor(node)])]

    def terms_of(self, node: N.Node) -> list[frozenset]:
        terms, flag = self.operand(node)
        return terms

    def power(self, node: N.BinOp) -> list[frozenset]:
        exponent = node.right
        if not (isinstance(exponent, N.Number) and exponent.value >= 1
                and float(exponent.value).is_integer()):
            raise FormulaError("the power of a term must be a whole number >= 1; for "
                               "arithmetic write I(x^2)", exponent.pos + 1)
        base = self.terms_of(node.left)
        result = list(base)
        for _ in range(int(exponent.value) - 1):
            result = _unique(result + [a | b for a in result for b in base])
        return result

    # -- factors -----------------------------------------------------------------------------
    def factor(self, node: N.Node) -> N.Node:
        if isinstance(node, N.Name):
            self.vars.add(node)
            return node
        if isinstance(node, N.Dot):
            self.vars.add(node)
            return node
        if isinstance(node, N.Call):
            check_factor_call(node, self.where)
            self.vars.add(node)
            return node
        if isinstance(node, N.Ellipsis_):
            raise FormulaError("'...' must stand between two numbered names, as in "
                               "x1 + ... + x10", node.pos + 1)
        if isinstance(node, N.Number):
            raise FormulaError(f"the number {node} is not a term (only 0 and 1 are)",
                               node.pos + 1)
        if isinstance(node, N.String):
            raise FormulaError("a string is not a term", node.pos + 1)
        if isinstance(node, N.Seq):
            raise FormulaError("a tuple is not a term", node.pos + 1)
        raise FormulaError(f"'{node}' is not a term", node.pos + 1)


def _unique(items) -> list[frozenset]:
    out: list[frozenset] = []
    for t in items:
        if t not in out:
            out.append(t)
    return out


def flatten_sum(node: N.Node) -> list[tuple[str, N.Node]]:
    """``a + b - c`` -> [('+', a), ('+', b), ('-', c)]; a leading unary sign counts too."""
    if isinstance(node, N.BinOp) and node.op in {"+", "-"}:
        return flatten_sum(node.left) + [
            (sign if node.op == "+" else ("-" if sign == "+" else "+"), n)
            for sign, n in flatten_sum(node.right)]
    if isinstance(node, N.Unary):
        return [(node.op if sign == "+" else ("-" if node.op == "+" else "+"), n)
                for sign, n in flatten_sum(node.operand)]
    return [("+", node)]


def expand_ellipses(items: list[tuple[str, N.Node]]) -> list[tuple[str, N.Node]]:
    """Replace ``x1 + ... + x10`` by x1, x2, ..., x10 (numbered names sharing a stem)."""
    out: list[tuple[str, N.Node]] = []
    i = 0
    while i < len(items):
        sign, node = items[i]
        if not isinstance(node, N.Ellipsis_):
            out.append(items[i])
            i += 1
            continue
        where = node.pos + 1
        usage = "'...' must stand between two numbered names, as in x1 + ... + x10"
        if not out or i + 1 >= len(items) or sign != "+" or items[i + 1][0] != "+":
            raise FormulaError(usage, where)
        first, last = out[-1][1], items[i + 1][1]
        if not isinstance(first, N.Name) or out[-1][0] != "+":
            raise FormulaError(usage, where)
        if not isinstance(last, N.Name):
            raise FormulaError(usage, last.pos + 1)
        m1, m2 = _NUMBERED.match(first.id), _NUMBERED.match(last.id)
        if not m1:
            raise FormulaError(f"'{first.id}' before '...' does not end in a number",
                               first.pos + 1)
        if not m2:
            raise FormulaError(f"'{last.id}' after '...' does not end in a number",
                               last.pos + 1)
        if m1.group(1) != m2.group(1):
            raise FormulaError(f"the ends of '...' do not share a stem: '{first.id}' and "
                               f"'{last.id}'", last.pos + 1)
        lo, hi = int(m1.group(2)), int(m2.group(2))
        if hi <= lo:
            raise FormulaError(f"the range '{first.id} + ... + {last.id}' does not count up",
                               last.pos + 1)
        if hi - lo > 100_000:
            raise FormulaError("the range after '...' is too long", last.pos + 1)
        width = len(m1.group(2)) if m1.group(2).startswith("0") else 0
        stem = m1.group(1)
        for k in range(lo + 1, hi + 1):
            out.append(("+", N.Name(f"{stem}{str(k).zfill(width)}", pos=node.pos)))
        i += 2  # the ellipsis and the last name (already added as part of the range)
    return out


def check_factor_call(call: N.Call, where: str) -> None:
    """Validate a function call used as a factor (a model-matrix variable)."""
    fn = call.fn
    at = call.pos + 1
    if fn in SPECIAL:
        raise FormulaError(f"{fn}() must be added at the top level of the formula, not "
                           f"used {where}", at)
    if fn in RESPONSE_ONLY:
        raise FormulaError(f"{fn}() is only allowed on the left of '~'", at)
    if fn in MATH_FUNCTIONS or fn in IDENTITY:
        check_arithmetic(call)
        return
    if fn in TRANSFORMS:
        _check_transform(call)
        return
    if fn in CATEGORICAL:
        if not call.args:
            raise FormulaError(f"{fn}() needs a variable", at)
        check_arithmetic(call.args[0])
        extra = list(call.args[1:]) + [v for _, v in call.kwargs]
        keys = [k for k, _ in call.kwargs]
        if fn != "C" and (extra or keys):
            raise FormulaError(f"{fn}() takes exactly one argument", at)
        if fn == "C":
            if len(extra) > 1 or any(k not in {"contr", "contrasts"} for k in keys):
                raise FormulaError("C() takes a variable and a contrast name "
                                   "(treatment, sum, helmert, poly)", at)
            if extra:
                contrast_name(extra[0])
        return
    raise unknown_function(call)


def contrast_name(node: N.Node) -> str:
    """Map ``sum``, ``contr.sum`` or ``"sum"`` to formulaic's contrast name."""
    key = node.id if isinstance(node, N.Name) else node.value if isinstance(node, N.String) \
        else None
    if key not in CONTRASTS:
        raise FormulaError(f"unknown contrasts '{node}' (allowed: treatment, sum, helmert, "
                           f"poly)", node.pos + 1)
    return CONTRASTS[key]


def _check_transform(call: N.Call) -> None:
    fn, at = call.fn, call.pos + 1
    if not call.args:
        raise FormulaError(f"{fn}() needs a variable", at)
    check_arithmetic(call.args[0])
    allowed = {"poly": {"degree", "raw"}, "scale": {"center", "scale"}, "center": set()}[fn]
    for key, value in call.kwargs:
        if key not in allowed:
            raise FormulaError(f"{fn}() has no argument '{key}'", at)
        literal(value, f"argument '{key}' of {fn}()")
    if fn == "poly":
        if len(call.args) > 2:
            raise FormulaError("poly() takes a variable and a degree", at)
        degree = call.args[1] if len(call.args) == 2 else dict(call.kwargs).get("degree")
        if degree is None:
            degree = N.Number(1.0)
        value = literal(degree, "the degree of poly()")
        if not isinstance(value, int) or value < 1:
            raise FormulaError("the degree of poly() must be a whole number >= 1",
                               degree.pos + 1)
    elif len(call.args) > 1:
        raise FormulaError(f"{fn}() takes one variable", at)


def poly_degree(call: N.Call) -> int:
    if len(call.args) == 2:
        return int(literal(call.args[1], "degree"))
    return int(literal(dict(call.kwargs).get("degree", N.Number(1.0)), "degree"))


# -- the whole formula ------------------------------------------------------------------------

def _grouping(node: N.Node) -> list[tuple[str, ...]]:
    """Expand a grouping expression (``g``, ``a:b``, ``a/b``) into lme4's grouping factors."""

    def interaction(n: N.Node) -> tuple[str, ...]:
        if isinstance(n, N.Name):
            return (n.id,)
        if isinstance(n, N.BinOp) and n.op == ":":
            return interaction(n.left) + interaction(n.right)
        if isinstance(n, N.Paren):
            return interaction(n.expr)
        raise FormulaError("a grouping factor must be a column name or an interaction "
                           "('a:b') or nesting ('a/b') of column names", n.pos + 1)

    def chain(n: N.Node) -> list[tuple[str, ...]]:
        if isinstance(n, N.BinOp) and n.op == "/":
            return chain(n.left) + [interaction(n.right)]
        if isinstance(n, N.Paren) and isinstance(n.expr, N.BinOp) and n.expr.op == "/":
            return chain(n.expr)
        return [interaction(n)]

    levels = chain(node)
    # lme4's expandSlash: a/b/c -> c:b:a, b:a, a (innermost first)
    out = []
    for k in range(len(levels), 0, -1):
        combined: tuple[str, ...] = ()
        for part in reversed(levels[:k]):
            combined += part
        out.append(combined)
    return out


def _random(paren: N.Paren) -> list[RandomTerm]:
    bar: N.BinOp = paren.expr  # type: ignore[assignment]
    for n in N.walk(bar.left):
        if isinstance(n, N.Call) and n.fn in SPECIAL:
            raise FormulaError(f"{n.fn}() cannot be used inside a random-effect term",
                               n.pos + 1)
    lhs = _Algebra(_Vars(), "inside a random-effect term").termlist(bar.left)
    groups = _grouping(bar.right)
    if bar.op == "|":
        exprs = [lhs]
    else:  # lme4's expandDoubleVerts: one uncorrelated block per term
        exprs = ([TermList(True)] if lhs.intercept else []) + [
            TermList(False, (t,)) for t in lhs.terms]
    return [RandomTerm(e, g) for e in exprs for g in groups]


def _is_label(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and value > 0


# options whose values the formula alone can check: (test, what the value must be)
_OPTION_VALUES = {
    "name": (_is_label, "a non-empty string"),
    "lengthscale": (_is_positive, "a positive number (where the estimated lengthscale starts)"),
}


def _options(call: N.Call, allowed: set[str]) -> tuple[tuple[str, object], ...]:
    out = []
    for (key, value), at in zip(call.kwargs, call.kw_pos or [call.pos] * len(call.kwargs)):
        if key not in allowed:
            raise FormulaError(f"{call.fn}() has no option '{key}' (allowed: "
                               f"{', '.join(sorted(allowed))})", at + 1)
        value = literal(value, f"option '{key}' of {call.fn}()")
        test, what = _OPTION_VALUES.get(key, (None, ""))
        if test is not None and not test(value):
            raise FormulaError(f"option '{key}' of {call.fn}() must be {what}, not {value!r}",
                               at + 1)
        out.append((key, value))
    return tuple(out)


def _nn(call: N.Call, vars_: _Vars) -> NNTerm:
    if len(call.args) != 1:
        raise FormulaError("nn() takes one input expression, as in nn(x1 + x2, hidden=(32,))",
                           call.pos + 1)
    for n in N.walk(call.args[0]):
        if isinstance(n, N.Call) and n.fn in SPECIAL:
            raise FormulaError(f"{n.fn}() cannot be nested inside nn()", n.pos + 1)
    algebra = _Algebra(vars_, "inside nn()")
    inputs = algebra.termlist(call.args[0], intercept=False)
    if not inputs.terms:
        # nn(1), nn(0) and nn(x - x) leave the network nothing to read
        raise FormulaError("nn() needs at least one input variable", call.pos + 1)
    return NNTerm(TermList(False, inputs.terms), _options(call, NN_OPTIONS),
                  tuple(algebra.dot_excluded))


def _rbf(call: N.Call) -> RBFTerm:
    if not call.args:
        raise FormulaError("rbf() needs coordinate columns, as in rbf(lat, lon)", call.pos + 1)
    coords = []
    for a in call.args:
        if not isinstance(a, N.Name):
            raise FormulaError("rbf() takes coordinate column names", a.pos + 1)
        if a.id in coords:
            raise FormulaError(f"coordinate '{a.id}' repeated in rbf()", a.pos + 1)
        coords.append(a.id)
    return RBFTerm(tuple(coords), _options(call, RBF_OPTIONS))


def _check_response(node: N.Node) -> None:
    if isinstance(node, N.Call) and node.fn == "cbind":
        if len(node.args) != 2 or node.kwargs:
            raise FormulaError("cbind() takes two columns: cbind(successes, failures)",
                               node.pos + 1)
        for a in node.args:
            check_arithmetic(a)
        return
    if isinstance(node, N.BinOp) and node.op in _BARS:
        raise FormulaError("a random-effect bar cannot be on the left of '~'", node.op_pos + 1)
    check_arithmetic(node)


def is_bar(node: N.Node) -> bool:
    """A random-effect term: ``(expr | group)`` or ``(expr || group)``."""
    return isinstance(node, N.Paren) and isinstance(node.expr, N.BinOp) \
        and node.expr.op in _BARS


def build_formula(lhs: N.Node | None, rhs: N.Node, text: str) -> Formula:
    """Turn the parsed sides of a formula into a :class:`Formula`."""
    vars_ = _Vars()
    if lhs is not None:
        _check_response(lhs)
        vars_.add(lhs)  # R counts the response first when ordering interaction factors
    fixed_items: list[tuple[str, N.Node]] = []
    random: list[RandomTerm] = []
    nns: list[NNTerm] = []
    rbfs: list[RBFTerm] = []
    offsets: list[N.Node] = []
    for sign, node in flatten_sum(rhs):
        bar = is_bar(node)
        special = node.fn if isinstance(node, N.Call) and node.fn in SPECIAL else None
        if (bar or special) and sign == "-":
            what = "a random-effect term" if bar else f"{special}()"
            raise FormulaError(f"{what} cannot be removed with '-'", node.pos + 1)
        if bar:
            random.extend(_random(node))
        elif special == "nn":
            nns.append(_nn(node, vars_))
        elif special == "rbf":
            rbfs.append(_rbf(node))
        elif special == "offset":
            if len(node.args) != 1 or node.kwargs:
                raise FormulaError("offset() takes one expression", node.pos + 1)
            check_arithmetic(node.args[0])
            offsets.append(node.args[0])
        else:
            fixed_items.append((sign, node))
    algebra = _Algebra(vars_, "in the fixed part")
    fixed = TermList(True)
    if fixed_items:
        expr = rebuild_sum(fixed_items)
        fixed = algebra.termlist(expr)
    return Formula(lhs, fixed, tuple(random), tuple(nns), tuple(rbfs), tuple(offsets), text,
                   tuple(algebra.dot_excluded), lme4_deparse(lhs, rhs),
                   r_deparse(lhs, rhs))


@dataclass(frozen=True)
class _Verbatim(N.Node):
    """Already-deparsed text inside a tree that is being printed."""

    text: str

    def __str__(self) -> str:
        return self.text


def lme4_deparse(lhs: N.Node | None, rhs: N.Node) -> str:
    """The formula as lme4 prints it: R's deparse, with ``(x || g)`` expanded the way
    lme4's expandDoubleVerts writes it: ``((1 | g) + (0 + x | g))``."""

    def expand(node: N.Node) -> N.Node:
        if isinstance(node, N.Paren) and isinstance(node.expr, N.BinOp) \
                and node.expr.op == "||":
            bar = node.expr
            lhs_terms = _Algebra(_Vars(), "inside a random-effect term").termlist(bar.left)
            parts = (["1"] if lhs_terms.intercept else []) + [
                f"0 + {t}" for t in lhs_terms.terms]
            group = str(bar.right)
            text = " + ".join(f"({p} | {group})" for p in parts)
            return _Verbatim(f"({text})")
        if isinstance(node, N.BinOp) and node.op in {"+", "-"}:
            return N.BinOp(node.op, expand(node.left), expand(node.right))
        return node

    return r_deparse(lhs, expand(rhs))


def r_deparse(lhs: N.Node | None, rhs: N.Node) -> str:
    """The formula as R's deparse writes it (``(x || g)`` as written)."""
    return f"{lhs} ~ {rhs}" if lhs is not None else f"~{rhs}"


def rebuild_sum(items: list[tuple[str, N.Node]]) -> N.Node:
    sign, node = items[0]
    expr: N.Node = node if sign == "+" else N.Unary("-", node, pos=node.pos)
    for sign, node in items[1:]:
        expr = N.BinOp(sign, expr, node, pos=expr.pos, op_pos=node.pos)
    return expr


__all__ = ["build_formula", "contrast_name", "is_bar", "poly_degree", "r_deparse",
           "rebuild_sum"]
