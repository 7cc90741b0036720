"""The whitelist of functions a formula may call, and the literal option values nn()/rbf() take.

Every callable a formula can reach is listed here; nothing else is ever called.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormulaError
from . import nodes as N

# Element-wise arithmetic functions usable anywhere an arithmetic expression is allowed.
MATH_FUNCTIONS = {
    "log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p,
    "exp": np.exp, "expm1": np.expm1, "sqrt": np.sqrt, "abs": np.abs,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "floor": np.floor, "ceiling": np.ceil, "round": np.round, "sign": np.sign,
}
# Identity wrapper: arithmetic inside is arithmetic, not formula algebra.
IDENTITY = {"I", "as.numeric"}
# Stateful transforms: learn statistics on the training data and reuse them for new data.
TRANSFORMS = {"poly", "scale", "center"}
# Mark a variable as categorical (treatment contrasts unless told otherwise).
CATEGORICAL = {"C", "factor", "as.factor"}
# Terms with their own meaning at the top level of a formula.
SPECIAL = {"nn", "rbf", "offset"}
# Only on the left of '~'.
RESPONSE_ONLY = {"cbind"}

CONTRASTS = {
    "treatment": "contr.treatment", "contr.treatment": "contr.treatment",
    "sum": "contr.sum", "contr.sum": "contr.sum",
    "helmert": "contr.helmert", "contr.helmert": "contr.helmert",
    "poly": "contr.poly", "contr.poly": "contr.poly",
}

NN_OPTIONS = {"hidden", "dropout", "activation", "module", "batchnorm", "name"}
RBF_OPTIONS = {"lengthscale", "name"}
_LITERAL_NAMES = {"TRUE": True, "T": True, "True": True, "FALSE": False, "F": False,
                  "False": False, "NULL": None, "None": None}

ALL_FUNCTIONS = (set(MATH_FUNCTIONS) | IDENTITY | TRANSFORMS | CATEGORICAL | SPECIAL
                 | RESPONSE_ONLY)


def unknown_function(call: N.Call) -> FormulaError:
    allowed = ", ".join(sorted(ALL_FUNCTIONS))
    return FormulaError(f"unknown function '{call.fn}' (allowed: {allowed})", call.pos + 1)


def literal(node: N.Node, what: str):
    """The Python value of a literal option value, or a FormulaError at its column."""
    if isinstance(node, N.Number):
        return int(node.value) if float(node.value).is_integer() else node.value
    if isinstance(node, N.String):
        return node.value
    if isinstance(node, N.Name) and node.id in _LITERAL_NAMES:
        return _LITERAL_NAMES[node.id]
    if isinstance(node, N.Unary) and isinstance(node.operand, N.Number):
        v = literal(node.operand, what)
        return -v if node.op == "-" else v
    if isinstance(node, N.Seq):
        return tuple(literal(i, what) for i in node.items)
    if isinstance(node, N.Paren):
        return literal(node.expr, what)
    raise FormulaError(f"{what} must be a literal (number, string, TRUE/FALSE or a tuple "
                       f"of those), not '{node}'", node.pos + 1)


def format_literal(value) -> str:
    """Write an option value back in formula syntax."""
    if value is True:
        return "TRUE"
    if value is False:
        return "FALSE"
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return str(N.String(value))
    if isinstance(value, tuple):
        inner = ", ".join(format_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return N.format_number(float(value))


def check_arithmetic(node: N.Node) -> None:
    """Check an arithmetic expression (inside I(), log(), the response, offset()).

    Allowed: numbers, column names, unary/binary arithmetic and comparisons, parentheses and
    calls of MATH_FUNCTIONS / I(). Everything else is a FormulaError at its column.
    """
    for n in N.walk(node):
        if isinstance(n, N.Call):
            if n.fn in MATH_FUNCTIONS or n.fn in IDENTITY:
                if len(n.args) != 1 or (n.kwargs and n.fn not in {"log", "round"}):
                    raise FormulaError(f"{n.fn}() takes exactly one argument", n.pos + 1)
                for key, value in n.kwargs:
                    if key not in {"base", "digits"}:
                        raise FormulaError(f"{n.fn}() has no argument '{key}'", n.pos + 1)
                    literal(value, f"argument '{key}' of {n.fn}()")
            elif n.fn in ALL_FUNCTIONS:
                raise FormulaError(f"{n.fn}() cannot be used inside an arithmetic expression",
                                   n.pos + 1)
            else:
                raise unknown_function(n)
        elif isinstance(n, N.BinOp) and n.op in {"|", "||"}:
            raise FormulaError(f"random-effect bar '{n.op}' inside an expression", n.op_pos + 1)
        elif isinstance(n, (N.Dot, N.Ellipsis_)):
            raise FormulaError(f"'{n}' cannot be used inside an expression", n.pos + 1)
        elif isinstance(n, N.Seq):
            raise FormulaError("a tuple cannot be used inside an expression", n.pos + 1)
        elif isinstance(n, N.String):
            raise FormulaError("a string cannot be used inside an arithmetic expression",
                               n.pos + 1)
