"""Expression nodes: the immutable syntax tree of one formula expression.

Nodes compare by content, never by position, so two formulas that mean the same thing are
equal whatever their spacing. ``str(node)`` deparses as R does (``I(t^2)``, ``log(x + 1)``),
which is what R uses for term and coefficient names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# R's deparse puts no spaces around these binary operators.
_TIGHT = {"^", ":", "/"}


@dataclass(frozen=True)
class Node:
    """Base node; ``pos`` is the 0-based offset of the node's first character."""

    pos: int = field(default=0, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Name(Node):
    id: str

    def __str__(self) -> str:
        ok = self.id.replace(".", "a").replace("_", "a")
        if ok.isalnum() and not self.id[0].isdigit() and self.id.isascii():
            return self.id
        return f"`{self.id}`"


@dataclass(frozen=True)
class Number(Node):
    value: float

    def __str__(self) -> str:
        return format_number(self.value)


@dataclass(frozen=True)
class String(Node):
    value: str

    def __str__(self) -> str:
        return '"' + self.value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Dot(Node):
    def __str__(self) -> str:
        return "."


@dataclass(frozen=True)
class Ellipsis_(Node):
    def __str__(self) -> str:
        return "..."


@dataclass(frozen=True)
class Paren(Node):
    expr: Node

    def __str__(self) -> str:
        return f"({self.expr})"


@dataclass(frozen=True)
class Seq(Node):
    """A tuple ``(a, b)`` or list ``[a, b]`` literal (only meaningful as an option value)."""

    items: tuple[Node, ...]
    bracket: str = "("

    def __str__(self) -> str:
        inner = ", ".join(str(i) for i in self.items)
        if self.bracket == "[":
            return f"[{inner}]"
        return f"({inner},)" if len(self.items) == 1 else f"({inner})"


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node

    def __str__(self) -> str:
        return f"{self.op}{self.operand}"


@dataclass(frozen=True)
class BinOp(Node):
    op: str  # '**' is stored as '^', as R's parser does
    left: Node
    right: Node
    op_pos: int = field(default=0, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        left, right = str(self.left), str(self.right)
        if self.op in _TIGHT:
            return f"{left}{self.op}{right}"
        return f"{left} {self.op} {right}"


@dataclass(frozen=True)
class Call(Node):
    fn: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...] = ()
    kw_pos: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        parts = [str(a) for a in self.args] + [f"{k} = {v}" for k, v in self.kwargs]
        return f"{self.fn}({', '.join(parts)})"


def format_number(value: float) -> str:
    """Format a number as R's deparse does: 2, 2.5, 0.001, 1e+06."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        fixed = str(int(value))
    else:
        fixed = format(value, ".15g")
        if "e" in fixed:
            fixed = format(value, ".15f").rstrip("0").rstrip(".")
    mant, _, exp = format(value, ".15e").partition("e")
    mant = mant.rstrip("0").rstrip(".")
    sci = f"{mant}e{exp[0]}{exp[1:].lstrip('0').rjust(2, '0')}"
    return sci if len(sci) < len(fixed) else fixed


def walk(node: Node):
    """Yield ``node`` and every node below it, depth first."""
    yield node
    if isinstance(node, Paren):
        yield from walk(node.expr)
    elif isinstance(node, Unary):
        yield from walk(node.operand)
    elif isinstance(node, BinOp):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Call):
        for a in node.args:
            yield from walk(a)
        for _, v in node.kwargs:
            yield from walk(v)
    elif isinstance(node, Seq):
        for i in node.items:
            yield from walk(i)


def names_in(node: Node) -> list[str]:
    """Column names referenced by an expression, in order of first appearance.

    Keyword arguments are options, not variables, and so is everything after the first
    argument of C() (its contrasts: ``C(f, sum)``).
    """
    seen: dict[str, None] = {}

    def visit(n: Node) -> None:
        if isinstance(n, Name):
            seen.setdefault(n.id, None)
        elif isinstance(n, Call):
            for a in n.args[:1] if n.fn == "C" else n.args:
                visit(a)
        elif isinstance(n, Paren):
            visit(n.expr)
        elif isinstance(n, Unary):
            visit(n.operand)
        elif isinstance(n, BinOp):
            visit(n.left)
            visit(n.right)
        elif isinstance(n, Seq):
            for i in n.items:
                visit(i)

    visit(node)
    return list(seen)
