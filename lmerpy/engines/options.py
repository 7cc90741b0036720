"""Checks of option values shared by the engines' settings (LmerControl, TorchControl): whole
numbers and finite numbers as numpy gives them too, and flags."""

from __future__ import annotations

import math
import numbers

import numpy as np


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


__all__ = ["is_flag", "is_number", "is_whole"]
