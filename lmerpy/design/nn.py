"""Inputs of nn() terms: float32 matrices standardised with training statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError
from ..formula import nodes as N
from ..formula.terms import NNTerm, TermList
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
    # Categorical inputs (text or pandas Categorical) are one-hot: without an intercept the
    # first factor is fully coded. Numbers stored as text are refused: a network fed them
    # would silently learn from one-hot codes instead of the values.
    bare = {f.id for t in term.inputs.terms for f in t.factors if isinstance(f, N.Name)}
    for name in sorted(bare):
        if name in data.columns and (pd.api.types.is_object_dtype(data[name].dtype)
                                     or pd.api.types.is_string_dtype(data[name].dtype)):
            values = data[name].dropna().astype(str)
            if len(values) and pd.to_numeric(values, errors="coerce").notna().all():
                raise DataError(f"column '{name}' holds numbers stored as text, so {term} "
                                f"would one-hot encode them: convert it with "
                                f"pd.to_numeric, or write factor({name}) if they are "
                                f"categories")
    encoder = MatrixEncoder(TermList(False, term.inputs.terms), what=str(term))
    raw = encoder.fit(data)
    mean = raw.mean(axis=0)
    scale = raw.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    X = ((raw - mean) / scale).astype(np.float32)
    return NNInput(term, X, encoder.names, mean, scale, encoder)
