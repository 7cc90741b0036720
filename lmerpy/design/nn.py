"""Inputs of nn() terms: float32 matrices standardised with training statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..formula.terms import NNTerm, TermList
from ..errors import DataError
from ..formula import nodes as N
from .encoding import MatrixEncoder


@dataclass
class NNInput:
    """One nn() term's input matrix (n × d, float32) and how to rebuild it for new data."""

    term: NNTerm
    X: np.ndarray
    names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    encoder: MatrixEncoder = field(repr=False)

    @property
    def options(self) -> dict:
        return dict(self.term.options)

    def transform(self, data: pd.DataFrame) -> np.ndarray:
        raw = self.encoder.transform(data)
        return ((raw - self.mean) / self.scale).astype(np.float32)


def nn_input(term: NNTerm, data: pd.DataFrame) -> NNInput:
    # Categorical inputs are one-hot: without an intercept the first factor is fully coded.
    # Text columns must be declared categorical (pandas Categorical or factor(x)): a network
    # fed numbers stored as text would silently learn from one-hot codes instead.
    bare = {f.id for t in term.inputs.terms for f in t.factors if isinstance(f, N.Name)}
    for name in bare:
        if name in data.columns:
            series = data[name]
            if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
                raise DataError(f"column '{name}' holds text, so it cannot be an input of "
                                f"{term}: convert it to numbers, or to a pandas Categorical "
                                f"(or write factor({name})) to one-hot encode it")
    encoder = MatrixEncoder(TermList(False, term.inputs.terms), what=str(term))
    raw = encoder.fit(data)
    mean = raw.mean(axis=0)
    scale = raw.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    X = ((raw - mean) / scale).astype(np.float32)
    return NNInput(term, X, encoder.names, mean, scale, encoder)
