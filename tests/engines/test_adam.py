"""FusedAdam makes the steps torch's fused Adam makes, bit for bit: same parameters, same
moments, same step counts — through learning-rate changes, parameters of two dtypes, a
parameter without a gradient, and a state reloaded from a checkpoint."""

from __future__ import annotations

import pytest
import torch

from lmerpy.engines.adam import FusedAdam


def _params(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(100, 10, generator=g).requires_grad_(),
            torch.randn(100, generator=g).requires_grad_(),
            torch.randn(3, generator=g, dtype=torch.float64).requires_grad_(),
            torch.randn((), generator=g, dtype=torch.float64).requires_grad_()]


def _grads(params, step: int, skip: int | None = None) -> None:
    g = torch.Generator().manual_seed(1000 + step)
    for i, p in enumerate(params):
        p.grad = None if i == skip else torch.randn(p.shape, generator=g, dtype=p.dtype)


def _same(a: torch.optim.Optimizer, b: torch.optim.Optimizer, pa, pb) -> None:
    for x, y in zip(pa, pb):
        assert torch.equal(x, y)
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(a.state[x][key], b.state[y][key]), key


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fused_adam_steps_are_torchs_bit_for_bit(weight_decay):
    pa, pb = _params(0), _params(0)
    ref = torch.optim.Adam(pa, lr=1e-3, weight_decay=weight_decay, fused=True)
    ours = FusedAdam(pb, lr=1e-3, weight_decay=weight_decay)
    for step in range(40):
        skip = 2 if step == 17 else None     # one step with a gradient missing
        if step == 25:                       # a new learning rate mid-way
            for opt in (ref, ours):
                opt.param_groups[0]["lr"] = 3e-4
        for params, opt in ((pa, ref), (pb, ours)):
            _grads(params, step, skip)
            opt.step()
        _same(ref, ours, pa, pb)
    # the steps compared were FusedAdam's own (its plan is made on its first lean step),
    # not torch's fallback, which would pass the comparison trivially
    assert ours._lean and ours._groups is not None


def test_fused_adam_after_a_reloaded_state():
    pa, pb = _params(1), _params(1)
    ref = torch.optim.Adam(pa, lr=1e-3, fused=True)
    ours = FusedAdam(pb, lr=1e-3)
    for step in range(5):
        for params, opt in ((pa, ref), (pb, ours)):
            _grads(params, step)
            opt.step()
    saved = ours.state_dict()
    saved = {"state": {k: {n: t.clone() for n, t in v.items()} for k, v in
                       saved["state"].items()}, "param_groups": saved["param_groups"]}
    for step in range(5, 8):   # ours runs on, then is put back to step 5
        _grads(pb, step)
        ours.step()
    ours.load_state_dict(saved)
    with torch.no_grad():
        for x, y in zip(pa, pb):
            y.copy_(x)
    for step in range(5, 12):
        for params, opt in ((pa, ref), (pb, ours)):
            _grads(params, step)
            opt.step()
        _same(ref, ours, pa, pb)
    assert ours._lean and ours._groups is not None  # planned anew after the reload
