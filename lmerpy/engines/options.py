"""Checks of option values shared by the engines' settings (LmerControl, TorchControl): whole
numbers and finite numbers as numpy gives them too, and flags."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import ModelError


def is_whole(value, least: int) -> bool:
    """Whether an option is a whole number (numpy's too, not a bool) of at least ``least``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and \
        value >= least


def is_number(value) -> bool:
    """A finite real number (numpy's too, not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        math.isfinite(value)


def is_flag(value) -> bool:
    """True/False (numpy's too), or 0/1 as ML code often writes verbose=0."""
    return isinstance(value, (bool, np.bool_)) or (
        isinstance(value, numbers.Integral) and value in (0, 1))


def require_flag(name: str, value) -> None:
    if not is_flag(value):
        raise ModelError(f"{name} must be True or False, not {value!r}")


def require_whole(name: str, value, least: int, optional: bool = False, also: str = ""
                  ) -> None:
    """A whole number of at least ``least`` (or None, if ``optional``), else a ModelError;
    ``also`` names another accepted value for the message."""
    if not (optional and value is None) and not is_whole(value, least):
        alternatives = [a for a in ("None" if optional else "", also) if a]
        raise ModelError(f"{name} must be a whole number of at least {least}"
                         f"{''.join(f' or {a}' for a in alternatives)}, not {value!r}")


def require_number(name: str, value, positive: bool, example: str = "") -> None:
    """A finite number above 0 (``positive``) or of at least 0, else a ModelError."""
    if not (is_number(value) and (value > 0 if positive else value >= 0)):
        what = "a positive number" if positive else "a number of at least 0"
        raise ModelError(f"{name} must be {what}{example}, not {value!r}")


def require_probability(name: str, value, example: str) -> None:
    """A number strictly between 0 and 1 (a confidence level, an alpha), else a ModelError."""
    if not (is_number(value) and 0 < value < 1):
        raise ModelError(f"{name} must be a probability in (0, 1), e.g. {example}, not "
                         f"{value!r}")


__all__ = ["is_flag", "is_number", "is_whole", "require_flag", "require_number",
           "require_probability", "require_whole"]
