"""A model's design restricted to the rows at some locations of a spatial term.

The torch engine estimates θ of a model with more spatial locations than it can factor
often (engines/torch_engine.py, REFINE_SPATIAL_LIMIT) by exact ML on the rows at a random
subset of the locations: the "subset of data" estimate of a Gaussian process's
hyperparameters. The BLUPs are then solved over all rows at that θ̂.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .covariance import RBFKernel
from .model import ModelDesign


def at_locations(design: ModelDesign, term: int, keep: np.ndarray
                 ) -> tuple[ModelDesign, np.ndarray]:
    """The design of the rows whose location in spatial term ``term`` is one of ``keep``
    (location indices), that term holding those locations alone; other terms keep all
    their levels (a level without rows only adds a zero row to Z). Also returns the rows
    kept, as indices into ``design``'s rows."""
    spatial = design.random[term]
    if not isinstance(spatial.cov, RBFKernel):
        raise TypeError(f"random term {term} ({spatial.group}) is not spatial")
    keep = np.unique(np.asarray(keep, dtype=np.int64))
    new_code = np.full(spatial.q, -1, dtype=np.int64)
    new_code[keep] = np.arange(len(keep))
    rows = np.flatnonzero(new_code[spatial.codes] >= 0)
    random = []
    for k, r in enumerate(design.random):
        if k == term:
            random.append(replace(r, levels=[r.levels[i] for i in keep],
                                  codes=new_code[r.codes[rows]], X=r.X[rows],
                                  cov=replace(r.cov, coords=r.cov.coords[keep])))
        else:
            random.append(replace(r, codes=r.codes[rows], X=r.X[rows]))
    nn = [replace(inp, X=inp.X[rows]) for inp in design.nn]
    offset = None if design.offset is None else design.offset[rows]
    return replace(design, y=design.y[rows], X=design.X[rows], random=random, nn=nn,
                   offset=offset, index=design.index[rows]), rows
