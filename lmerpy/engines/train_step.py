"""One optimisation step of the torch engine: eager, or on a GPU the replay of a CUDA graph.

At the paper's batch size (100 rows) a step is some hundred tiny kernels, and on a GPU the
time goes to launching them from Python, not to computing: an epoch ran slower on an H100
than on two CPU cores (benchmarks/RESULTS_torch_cuda.md). For batches of the full size the
step (loss, backward, Adam) is captured once as a CUDA graph and then replayed batch after
batch with the batch copied into the graph's fixed input tensors. A graph needs fixed shapes:
the levels present in a batch vary, so each term's k×k system is sized for the most levels
(or locations) a batch can hold, min(batch size, levels), and padded with −1; the padding
adds identity blocks, which change neither the likelihood nor its gradient (batch_nll.py).
GLMMs, group batching (whose batches vary in size) and the last, shorter batch of an epoch
stay eager.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import warn


class TrainingWarning(UserWarning):
    """Training went differently from what was asked, for a reason the user should know
    (a non-finite loss stopped it, a step could not be captured, ...)."""


class TrainStep:
    """``step(batch, batch_size)`` trains on one batch and returns its NLL as a device tensor
    (no host synchronisation: the caller sums the epoch's NLL on the device). With
    ``level_caps`` (each term's number of levels) full-size batches replay a CUDA graph."""

    def __init__(self, nll_of: Callable[[dict], torch.Tensor], opt: torch.optim.Optimizer,
                 params: list[torch.Tensor], level_caps: list[int] | None):
        self.nll_of, self.opt, self.params = nll_of, opt, params
        self.level_caps = level_caps        # None: never capture
        self._graph: _CapturedStep | None = None

    def __call__(self, batch: dict, batch_size: int) -> torch.Tensor:
        if self.level_caps is not None and batch["rows"] == batch_size:
            if self._graph is None or self._graph.rows != batch_size:
                self._graph = self._capture(batch, batch_size)
            if self._graph is not None:
                return self._graph.replay(batch)
        return self.eager(batch)

    def scale_lr(self, factor: float) -> None:
        """Every parameter group's learning rate times ``factor``. A captured graph holds
        the old rates as constants, so it is dropped and the next full batch captures
        anew."""
        for group in self.opt.param_groups:
            group["lr"] *= factor
        self._graph = None

    def eager(self, batch: dict) -> torch.Tensor:
        for p in self.params:  # zero_grad(set_to_none=True), without its per-call overhead
            p.grad = None
        loss = self.nll_of(batch)
        (loss / batch["rows"]).backward()
        self.opt.step()
        return loss.detach()

    def _capture(self, batch: dict, batch_size: int) -> _CapturedStep | None:
        caps = [min(batch_size, cap) for cap in self.level_caps]
        try:
            return _CapturedStep(self, batch, caps)
        except RuntimeError as err:  # e.g. a user module that synchronises: train eagerly
            warn(f"training without CUDA graphs (the step could not be captured: "
                 f"{str(err).splitlines()[0]})", TrainingWarning)
            self.level_caps = None
            return None


class _CapturedStep:
    """The step captured on fixed input tensors. Capturing runs a few warm-up steps (which
    must see real data); parameters and optimiser state are put back afterwards, so the
    captured run trains exactly the steps the eager one would."""

    def __init__(self, step: TrainStep, batch: dict, caps: list[int]):
        self.rows = batch["rows"]
        self.inputs = {key: _clone(value) for key, value in batch.items() if key != "segments"}
        # each term's levels present, padded to its cap with −1 (batch_nll.py)
        self.inputs["segments"] = [(torch.full((cap,), -1, dtype=present.dtype,
                                               device=present.device), inv.clone())
                                   for (present, inv), cap in zip(batch["segments"], caps)]
        _fill_segments(self.inputs["segments"], batch["segments"])
        saved = _snapshot(step.params, step.opt)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(side):
                for _ in range(3):
                    step.eager(self.inputs)
            torch.cuda.current_stream().wait_stream(side)
            step.opt.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.loss = step.eager(self.inputs)
        finally:
            _restore(saved, step.params, step.opt)

    def replay(self, batch: dict) -> torch.Tensor:
        for key, value in self.inputs.items():
            if key == "segments":
                _fill_segments(value, batch["segments"])
            elif isinstance(value, list):
                for dst, src in zip(value, batch[key]):
                    dst.copy_(src)
            elif isinstance(value, torch.Tensor):
                value.copy_(batch[key])
        self.graph.replay()
        return self.loss.clone()


def _fill_segments(static: list, segments: list) -> None:
    for (present, inv), (new_present, new_inv) in zip(static, segments):
        k = len(new_present)
        present[:k].copy_(new_present)
        present[k:].fill_(-1)
        inv.copy_(new_inv)


def _clone(value):
    if isinstance(value, list):
        return [v.clone() for v in value]
    return value.clone() if isinstance(value, torch.Tensor) else value


def _snapshot(params: list[torch.Tensor], opt: torch.optim.Optimizer) -> tuple:
    state = [{k: v.clone() for k, v in opt.state[p].items() if isinstance(v, torch.Tensor)}
             for p in params]
    return [p.detach().clone() for p in params], state


def _restore(saved: tuple, params: list[torch.Tensor], opt: torch.optim.Optimizer) -> None:
    """Put parameters and Adam's moments back in place (the graph holds their addresses);
    state the warm-up created anew starts from zero, as a fresh Adam's does."""
    values, state = saved
    with torch.no_grad():
        for p, v, before in zip(params, values, state):
            p.copy_(v)
            for key, current in opt.state[p].items():
                if isinstance(current, torch.Tensor):
                    current.copy_(before[key]) if key in before else current.zero_()


__all__ = ["TrainStep", "TrainingWarning"]
