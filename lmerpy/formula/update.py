"""R's ``update.formula``: a new formula written against an old one, ``. ~ . - x + (1 | g)``,
where ``.`` stands for the old formula's side. Text in, text out; no data."""

from __future__ import annotations

from ..errors import FormulaError
from . import nodes as N
from . import parse  # the package's parse: errors carry the text and a caret
from .expand import build_formula, flatten_sum, is_bar, rebuild_sum
from .functions import SPECIAL
from .parser import parse_expression
from .terms import Formula


def update_formula(old: Formula, new: str) -> str:
    """The formula ``new`` with each ``.`` replaced by the old formula's side, simplified as
    R's ``update()`` does: the terms in R's order (first-order terms as they appear, random
    and nn()/rbf() terms among them, then interactions), offsets, and ``- 1`` for a formula
    without an intercept. A term subtracted is removed (``. ~ . - (Days | Subject)``), an
    offset too (R keeps it); removing a random term the formula does not have is an error
    (R ignores it). A ``.`` inside ``nn()`` keeps its own meaning (every other column)."""
    if not isinstance(new, str):
        raise FormulaError(f"update() takes the new formula as text, not "
                           f"{type(new).__name__}")
    lhs_new, rhs_new, _ = parse_expression(new)
    lhs_old, rhs_old, _ = parse_expression(old.text or str(old))
    lhs = _response(lhs_new, lhs_old, new)
    items: list[tuple[str, N.Node]] = []
    for sign, node in flatten_sum(rhs_new):
        if isinstance(node, N.Dot):
            items += [(s if sign == "+" else _flip(s), n) for s, n in flatten_sum(rhs_old)]
        else:
            _check_no_dot(node, new)
            items.append((sign, node))
    offsets = _cancel([(s, n) for s, n in items if _is_offset(n)], new)
    _cancel([(s, n) for s, n in items if _whole_term(n)], new)  # a removal must find its term
    # R's terms algebra orders the terms; a random or nn()/rbf() term takes part in it as
    # one variable, under a name no column can have
    stand_in = {node: N.Name(f"\0{k}") for k, node in enumerate(
        dict.fromkeys(n for _, n in items if _whole_term(n)))}
    terms = [(s, stand_in.get(n, n)) for s, n in items if not _is_offset(n)]
    head = f"{lhs} " if lhs is not None else ""
    try:
        formula = build_formula(lhs, rebuild_sum(terms) if terms else N.Number(1.0), new)
    except FormulaError:  # say it on the whole updated formula, with a caret into it
        parse(f"{head}~ {rebuild_sum(items)}")
        raise
    original = {str(name): node for node, name in stand_in.items()}
    labels = [str(original.get(str(t), t)) for t in formula.fixed.terms]
    labels += [f"- {N.Name(c)}" for c in formula.dot_excluded]
    labels += [str(n) for n in offsets]
    text = " + ".join(labels).replace("+ - ", "- ")
    if not formula.fixed.intercept:
        text = f"{text} - 1" if labels else "-1"
    return f"{head}~ {text or 1}"


def random_parts(formula: Formula) -> tuple[str, list[N.Node]]:
    """The fixed part as written (R's ``nobars``, ``1`` if empty) and the random terms as
    lme4's findbars() lists them, ``(x || g)`` split into its terms, with rbf() terms after
    them (lmerTest's ranova tests each)."""
    _, rhs, _ = parse_expression(formula.as_written or str(formula))
    fixed, random = [], []
    for sign, node in flatten_sum(rhs):
        if isinstance(node, N.Paren) and not _whole_term(node) and all(
                _whole_term(n) for _, n in flatten_sum(node.expr)):
            random += [n for _, n in flatten_sum(node.expr)]  # lme4's expanded ||
        elif _whole_term(node) and not (isinstance(node, N.Call) and node.fn == "nn"):
            random.append(node)
        else:
            fixed.append((sign, node))
    bars = [n for n in random if isinstance(n, N.Paren)]
    return str(rebuild_sum(fixed)) if fixed else "1", bars + [n for n in random
                                                             if n not in bars]


def _response(lhs_new: N.Node | None, lhs_old: N.Node | None, text: str) -> N.Node | None:
    """``.`` or nothing on the left keeps the old response (R: ``update(m, ~ . + x)``)."""
    if lhs_new is None or isinstance(lhs_new, N.Dot):
        return lhs_old
    _check_no_dot(lhs_new, text, "on the left of '~' '.' stands for the whole response: "
                                 "write '. ~ ...' or the new response")
    return lhs_new


def _check_no_dot(node: N.Node, text: str, why: str | None = None) -> None:
    """A '.' deeper than a term of the sum (``.^2``, ``log(.)``) is not substituted; one in
    nn() means every other column, as in any formula."""
    if isinstance(node, N.Call) and node.fn == "nn":
        return
    for n in N.walk(node):
        if isinstance(n, N.Dot):
            raise FormulaError(why or "update() replaces a '.' that is a term of the new "
                               "formula's sum ('. ~ . + x'), not one inside an expression",
                               n.pos + 1, text)


def _whole_term(node: N.Node) -> bool:
    """A random-effect bar, nn() or rbf() term: one term to R's algebra."""
    return is_bar(node) or (isinstance(node, N.Call) and node.fn in SPECIAL
                            and node.fn != "offset")


def _is_offset(node: N.Node) -> bool:
    return isinstance(node, N.Call) and node.fn == "offset"


def _cancel(items: list[tuple[str, N.Node]], text: str) -> list[N.Node]:
    """Added terms in order, each once; a subtracted one removes its equal (nodes compare by
    content, so spacing does not matter), and one that is not there is an error."""
    kept: list[N.Node] = []
    for sign, node in items:
        if sign == "+":
            if node not in kept:
                kept.append(node)
        elif node in kept:
            kept.remove(node)
        else:
            raise FormulaError(f"cannot remove {node}: the formula has no such term",
                               node.pos + 1, text)
    return kept


def _flip(sign: str) -> str:
    return "-" if sign == "+" else "+"


__all__ = ["random_parts", "update_formula"]
