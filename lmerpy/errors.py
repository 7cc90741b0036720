"""The exception hierarchy: every error lmerpy raises on bad input derives from LmerpyError."""

from __future__ import annotations

import os
import sys
import sysconfig
import warnings


class LmerpyError(Exception):
    """Base class of every error lmerpy raises on purpose."""


class FormulaError(LmerpyError, ValueError):
    """A formula that cannot be parsed or has no meaning; carries the 1-based column."""

    def __init__(self, message: str, column: int | None = None, text: str | None = None):
        self.message = message
        self.column = column
        self.text = text
        super().__init__(self._render())

    def _render(self) -> str:
        if self.column is None:
            return self.message
        head = f"{self.message} at column {self.column}"
        if self.text is None:
            return head
        # Show the formula on one line with a caret under the offending character.
        line = self.text.replace("\n", " ").replace("\t", " ")
        return f"{head}\n  {line}\n  {' ' * (self.column - 1)}^"


class DataError(LmerpyError, ValueError):
    """Data that does not fit the formula: missing columns, bad types, unseen levels, ..."""


class ModelError(LmerpyError, ValueError):
    """A model that cannot be fitted as specified (too many random effects, ...)."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
# lmerpy's own files, the installed libraries' (scipy calling back into lmerpy) and the
# standard library's (functools.cached_property between two lmerpy frames)
_SKIPPED = (_PACKAGE, *sorted({os.path.abspath(p) + os.sep
                               for key in ("purelib", "platlib", "stdlib", "platstdlib")
                               if (p := sysconfig.get_paths().get(key))}))


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Issue a warning attributed to the first caller outside lmerpy, the installed
    libraries and the standard library (as pandas does), so it names the user's line, in a
    script or a notebook cell, whatever the depth of the code that found the problem — also
    where lmerpy runs inside a library's callback (scipy's optimisers call glmer_nb's
    refits) — and ``warnings.filterwarnings(module=...)`` matches the caller."""
    frame, level = sys._getframe(), 1
    while frame is not None and frame.f_code.co_filename.startswith(_SKIPPED):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
