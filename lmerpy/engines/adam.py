"""Adam for the torch engine: torch's fused Adam, its steps made without the Python around them.

The paper's network has some 7,750 parameters in a dozen tensors, so the fused update itself
takes tens of microseconds; ``torch.optim.Adam.step`` spends several times that in Python
(hooks, profiler records, regrouping the tensors by device and dtype each step), some 5% of
a training step at batch 1,000 on two CPU cores. Once every parameter has its state, the
steps here call the same two kernels torch's fused path calls, in the same order, on lists
grouped once — so the parameters and moments are the same, bit for bit
(tests/engines/test_adam.py). The step is not wrapped in torch's profiler record and step
hooks (the engine registers none). Anything out of that plain case (a closure, a parameter
without a gradient, amsgrad, a gradient scaler, a captured CUDA step) is torch's own step.
"""

from __future__ import annotations

import torch


class FusedAdam(torch.optim.Adam):
    """``torch.optim.Adam(params, fused=True, ...)`` with cheaper steps (module docstring)."""

    def __init__(self, params, **options):
        super().__init__(params, fused=True, **options)
        self._groups: list[tuple[dict, list[list[torch.Tensor]]]] | None = None
        self._lean = hasattr(torch, "_fused_adam_") and all(
            not (g["amsgrad"] or g["maximize"] or g["capturable"] or g["differentiable"]
                 or g.get("decoupled_weight_decay", False)) for g in self.param_groups)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._groups = None          # the moments are new tensors

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        self._groups = None

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None or not self._lean or getattr(self, "grad_scale", None) is not None:
            return super().step(closure)
        if self._groups is None:
            if any(len(self.state[p]) == 0 for g in self.param_groups for p in g["params"]):
                return super().step()  # the first step creates the moments
            self._groups = self._plan()
        grads = [[p.grad for p in params] for _, (params, *_rest) in self._groups]
        if any(g is None for part in grads for g in part):
            return super().step()
        # every step count at once (torch adds one per device and dtype, just before that
        # part's update: the same counts, as the parts share no tensor)
        steps_all = [step for _, lists in self._groups for step in lists[3]]
        torch._foreach_add_(steps_all, 1)
        for (group, (params, exp_avgs, exp_avg_sqs, steps)), part in zip(self._groups, grads):
            beta1, beta2 = group["betas"]
            try:
                torch._fused_adam_(params, part, exp_avgs, exp_avg_sqs, [], steps,
                                   amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
                                   weight_decay=group["weight_decay"], eps=group["eps"],
                                   maximize=False)
            except TypeError:  # a torch whose kernel takes other arguments: torch's step
                torch._foreach_sub_(steps_all, 1)
                self._lean = False
                return super().step()
        return None

    # torch wraps an optimiser's step in a profiler record and its step hooks, which cost
    # as much as the update here; the engine registers no hooks on its own optimiser
    step.hooked = True

    def _plan(self) -> list[tuple[dict, list[list[torch.Tensor]]]]:
        """Each parameter group's tensors split by device and dtype, as torch's fused path
        splits them, with the moments and step counts that go with them."""
        plan = []
        for group in self.param_groups:
            split: dict = {}
            for p in group["params"]:
                lists = split.setdefault((p.device, p.dtype), [[], [], [], []])
                state = self.state[p]
                for dst, value in zip(lists, (p, state["exp_avg"], state["exp_avg_sq"],
                                              state["step"])):
                    dst.append(value)
            plan += [(group, lists) for lists in split.values()]
        return plan


__all__ = ["FusedAdam"]
