"""The training step: a step that cannot be captured as a CUDA graph is trained eagerly."""

from __future__ import annotations

import warnings

import pytest
import torch

from lmerpy.engines.train_step import TrainingWarning, TrainStep


def _problem():
    torch.manual_seed(0)
    X = torch.randn(8, 3, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = torch.optim.Adam([w], lr=0.1)
    return {"X": X, "y": y, "segments": [], "rows": 8}, w, opt


def test_a_step_that_cannot_be_captured_trains_eagerly_with_a_warning(monkeypatch):
    def no_stream(*args, **kwargs):
        raise RuntimeError("capture refused\nsecond line")

    monkeypatch.setattr(torch.cuda, "Stream", no_stream)
    batch, w, opt = _problem()
    step = TrainStep(lambda b: ((b["y"] - b["X"] @ w) ** 2).sum(), opt, [w], level_caps=[])
    with pytest.warns(TrainingWarning, match=r"without CUDA graphs .*capture refused\)$"):
        first = step(batch, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked once: later steps go straight to eager
        second = step(batch, 8)

    ref_batch, v, ref_opt = _problem()
    reference = TrainStep(lambda b: ((b["y"] - b["X"] @ v) ** 2).sum(), ref_opt, [v], None)
    assert float(first) == float(reference(ref_batch, 8))
    assert float(second) == float(reference(ref_batch, 8))
    assert torch.equal(w, v) and float(second) < float(first)
