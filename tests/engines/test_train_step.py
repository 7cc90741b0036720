"""The training step: a step that cannot be captured as a CUDA graph is trained eagerly, and
on the CPU an emulation of capture and replay checks the graph's bookkeeping (static inputs,
padded levels, recapture at a new batch size or rate) through the second phase."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import torch

import lmerpy as lp
from lmerpy.engines import torch_engine, train_step
from lmerpy.engines.train_step import TrainingWarning, TrainStep
from tests.engines.test_torch import _nonlinear


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


class _NoStream:
    def wait_stream(self, other) -> None:
        pass


class _EmulatedGraph:
    """A CPU stand-in for torch.cuda.CUDAGraph: capturing runs the step once (train_step
    puts parameters and Adam's state back afterwards, as after a real capture); replaying
    runs it again on the graph's static inputs, and refuses a rate other than the one it was
    captured at (a real graph holds the rate as a constant)."""

    def replay(self) -> None:
        self.run()


@pytest.fixture
def emulated_graphs(monkeypatch) -> list:
    """Full-size steps go through _CapturedStep on the CPU; returns (rows, rate) of each
    capture."""
    captures: list = []
    capture = train_step._CapturedStep.__init__
    adam = torch_engine._adam

    def init(self, step, batch, caps):
        capture(self, step, batch, caps)
        rate = step.opt.param_groups[0]["lr"]

        def run():
            assert step.opt.param_groups[0]["lr"] == rate, "a graph replayed a stale rate"
            self.loss.copy_(step.eager(self.inputs))
        self.graph.run = run
        captures.append((self.rows, rate))

    monkeypatch.setattr(train_step._CapturedStep, "__init__", init)
    monkeypatch.setattr(torch.cuda, "Stream", lambda *a, **k: _NoStream())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a, **k: _NoStream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "graph", lambda g, **k: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _EmulatedGraph)
    monkeypatch.setattr(torch_engine, "_captures", lambda device, control: control.cuda_graphs)
    # a capturable Adam needs a GPU; the emulated graph does not
    monkeypatch.setattr(torch_engine, "_adam", lambda p, c, capturable=False: adam(p, c))
    return captures


@pytest.mark.parametrize("random, grows", [("(1 | g)", True), ("(1 | g) + (1 | h)", False),
                                           ("rbf(lat, lon)", True)])
def test_replayed_steps_train_as_eager_ones_through_the_second_phase(emulated_graphs, random,
                                                                     grows):
    """Replays of captured steps train the run that eager steps train, across the second
    phase: a new capture at the grown batch size, or after the rate falls (several terms)."""
    data = _nonlinear(1030, 40, 3)
    data["h"] = (np.arange(len(data)) % 9).astype(str)
    data["lat"], data["lon"] = np.arange(len(data)) % 7, np.arange(len(data)) % 11 / 2
    formula = f"y ~ nn(x1 + ... + x10, hidden=(16, 8), dropout=0) + {random}"
    kwargs = dict(seed=2, epochs=30, patience=2, lr=1e-2, batch_size=100, verbose=False,
                  refine=False, backfit=False)
    replayed = lp.lmer(formula, data, **kwargs)
    n_captures = len(emulated_graphs)
    eager = lp.lmer(formula, data, cuda_graphs=False, **kwargs)
    assert len(emulated_graphs) == n_captures  # cuda_graphs=False: no capture
    phase = replayed.history[["batch_size", "lr"]].drop_duplicates()
    assert len(phase) == 2, phase  # the second phase began
    train_rows = len(data) - round(0.1 * len(data))
    # batches grow tenfold as far as the training rows allow; the rate takes the rest
    expected = [(100, 1e-2), (train_rows, 1e-2 * train_rows / 1000)] if grows else \
        [(100, 1e-2), (100, 1e-3)]
    assert [(rows, pytest.approx(rate)) for rows, rate in emulated_graphs] == expected
    assert len(replayed.history) == len(eager.history)
    cols = ["train_nll", "val_nll", "sigma2", "lr", "batch_size"]
    np.testing.assert_allclose(replayed.history[cols], eager.history[cols], rtol=1e-6)
    np.testing.assert_allclose(replayed.theta, eager.theta, rtol=1e-6)
