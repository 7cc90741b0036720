"""Backfitting the network after LMMNN training: epochs with the full-data gradient.

For fixed θ and σ the marginal NLL of f is, up to terms free of f, the penalised least
squares min_u ‖y − f − ZΛu‖² + ‖u‖² over 2σ² (lme4 JSS eq. 11–14, f as an offset, b = Λu),
so by the envelope theorem its gradient in f is that of ½‖y − Zb̂ − f‖²/σ² at the BLUP
b̂(f) — equivalently V⁻¹r = (r − Zb̂)/σ² (Woodbury; tests/engines/test_backfit.py). Each
epoch therefore solves b̂ (and any linear β̂) over the training rows at θ̂ with the exact
engine's penalised least squares — the factor stays, only the right-hand side changes — and
gives the network one pass of Adam steps on that squared error. Unlike the mini-batch NLL,
whose batches see about one row of each level of a second or third crossed factor, this
gradient holds every random term over all rows. Early stopping watches the prediction
error of the validation rows with b̂ from the training rows: what a prediction for a new
observation of a known level would make of it.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..design.model import ModelDesign
from .batching import EpochBatches
from .networks import as_output, attach_generator, summed_output
from .pls import PLS, CrossProducts
from .train_step import TrainStep


@dataclass
class BackfitResult:
    """What backfitting did: passes run, the best (0: the trained network was kept) and per
    pass the validation rows' mean squared prediction error of the network after it, and the
    training rows' squared error during it."""

    epochs: int
    best_epoch: int
    best_val_mse: float
    history: pd.DataFrame


def backfit(networks: list[nn.Module], inputs: list[torch.Tensor], design: ModelDesign,
            X: np.ndarray, y: np.ndarray, theta: np.ndarray, train_rows: np.ndarray,
            val_rows: np.ndarray, make_optimizer, batch_size: int, epochs: int,
            patience: int, rng: np.random.Generator, graphs: bool = False) -> BackfitResult:
    """Train ``networks`` (in place) by backfitting at θ̂ = ``theta``; ``y`` is the response
    less any offset, ``inputs`` the nn() input tensors of all rows. The networks end at the
    best epoch's weights. ``graphs``: replay full-size steps as CUDA graphs (train_step.py;
    ``make_optimizer`` must then give a capturable optimiser)."""
    Zr = design.Z.tocsr()
    Z_tr, X_tr = Zr[train_rows], X[train_rows]
    Zt_tr = Z_tr.T.tocsr()
    pls = PLS(design.random, CrossProducts.build(X_tr, Z_tr, y[train_rows], None),
              design.split_theta)
    lam = pls.Lambda(theta)
    device = inputs[0].device
    params = [p for net in networks for p in net.parameters() if p.requires_grad]
    opt = make_optimizer(params)

    def linear_part(f: np.ndarray) -> np.ndarray:
        """Xβ̂ + Zb̂ for every row, from the training rows' PLS at θ̂ given the networks."""
        pls.cp = pls.cp.with_response(X_tr, Zt_tr, y[train_rows] - f[train_rows])
        sol = pls.solve(theta)
        return X @ sol.beta + Zr @ np.asarray(lam @ sol.u).ravel()

    target = torch.zeros(len(y), dtype=torch.float32, device=device)

    def loss_of(batch: dict) -> torch.Tensor:
        out = sum(as_output(net(x)) for net, x in zip(networks, batch["nn"]))
        return 0.5 * ((batch["y"] - out) ** 2).sum()

    step = TrainStep(loss_of, opt, params, [] if graphs else None)  # no random terms
    best = (math.inf, None, 0)
    stale, rows, train_mse = 0, [], math.nan
    for net in networks:
        attach_generator(net, rng)
    for epoch in range(epochs + 1):  # epoch: passes done so far
        started = time.perf_counter()
        for net in networks:
            net.eval()
        f = summed_output(networks, inputs, len(y))
        fitted = linear_part(f)
        val_mse = float(np.mean((y[val_rows] - f[val_rows] - fitted[val_rows]) ** 2))
        if val_mse < best[0]:
            best, stale = (val_mse, [copy.deepcopy(n.state_dict()) for n in networks],
                           epoch), 0
        else:
            stale += 1
        done = epoch == epochs or bool(patience and stale >= patience)
        if not done:  # one pass on the squared error at this epoch's BLUP
            target.copy_(torch.as_tensor(y - fitted, dtype=torch.float32))
            for net in networks:
                net.train()
            batches = EpochBatches.build({"nn": inputs, "y": target}, [],
                                         rng.permutation(train_rows), None, batch_size,
                                         device)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for b in range(len(batches)):
                total += step(batches.batch(b), batch_size)
        rows.append({"epoch": epoch, "train_mse": train_mse, "val_mse": val_mse,
                     "seconds": time.perf_counter() - started})
        if done:
            break
        train_mse = 2.0 * float(total) / len(train_rows)
    for net, state in zip(networks, best[1]):
        attach_generator(net, None)
        net.load_state_dict(state)
        net.eval()
    return BackfitResult(len(rows) - 1, best[2], best[0], pd.DataFrame(rows))


__all__ = ["BackfitResult", "backfit"]
