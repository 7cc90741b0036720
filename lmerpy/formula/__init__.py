"""The formula language: parse lme4-style formula text into immutable terms (no data)."""

from __future__ import annotations

from ..errors import FormulaError
from .expand import build_formula
from .parser import parse_expression
from .terms import Formula, NNTerm, RandomTerm, RBFTerm, Term, TermList


def parse(text: str) -> Formula:
    """Parse a formula such as ``"y ~ x + (1 + x | g)"`` into a :class:`Formula`.

    Raises :class:`FormulaError` with the 1-based column of the problem and a caret line.
    """
    lhs, rhs, _ = parse_expression(text)
    try:
        return build_formula(lhs, rhs, text)
    except FormulaError as err:
        if err.text is None:
            raise FormulaError(err.message, err.column, text) from None
        raise
    except RecursionError:
        raise FormulaError("formula is nested too deeply") from None


__all__ = ["parse", "Formula", "FormulaError", "NNTerm", "RandomTerm", "RBFTerm", "Term",
           "TermList"]
