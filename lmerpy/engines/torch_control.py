"""The torch engine's training settings (TorchControl) and their check at the border: every
option is validated before training, so a bad value gets a ModelError that names it, never
a torch or numpy traceback from deep in the loop."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from ..errors import ModelError
from .options import is_number, require_flag, require_number, require_whole

BATCHING = ("sorted", "random", "group")
AUTO_GROWTH = 10  # batch_growth="auto", where the second phase runs


@dataclass
class TorchControl:
    """Training settings (defaults: the LMMNN paper's, plus backfitting, or the second phase
    where the network is not backfitted)."""

    lr: float = 1e-3
    batch_size: int = 100
    epochs: int = 500
    patience: int = 10
    validation: float = 0.1
    # "sorted": rows sorted by the first random term's levels (a new level order each epoch;
    # an rbf term whose θ is kept as trained: along space) and cut into batches of exactly
    # batch_size rows, as the paper's published code trains; "random": rows shuffled;
    # "group": whole levels per batch (sizes vary). A random batch of 100 rows among
    # hundreds of levels holds about one row of each: σ²b and σ²e are not told apart and b
    # is noise on the network's gradient (docs/lmmnn.md, "Batches", measures it)
    batching: str = "sorted"
    device: str = "auto"
    seed: int | None = None
    verbose: bool = True
    weight_decay: float = 0.0
    # After training, re-estimate θ (and any linear coefficients) exactly by ML with the
    # network's output held fixed: one exact block-coordinate step of the same likelihood
    # (for GLMMs: glmer's Laplace approximation with the network as an offset).
    refine: bool = True
    # GLMMs with one random intercept: adaptive Gauss–Hermite nodes (None: 5, the
    # paper's); 1, and every model with slopes, several random terms or an rbf term: the
    # Laplace approximation (more nodes are refused there, as lme4 refuses nAGQ > 1)
    quadrature: int | None = None
    # CPU threads while training; None: one thread for batches up to 4096 rows, where the
    # per-batch operations are too small to gain from threads (and lose much when the
    # cores are busy), else torch's setting
    threads: int | None = None
    checkpoint_dir: str | None = None  # save the training state there after every epoch
    resume: bool = False              # continue from the checkpoint in checkpoint_dir
    # on a GPU, replay each training step as a captured CUDA graph (train_step.py)
    cuda_graphs: bool = True
    # after training, backfit the network at θ̂ (refined, or as trained where refinement
    # is off): full-batch L-BFGS on its marginal NLL over all training rows (backfit.py;
    # Gaussian nn() models with a validation split); "auto": wherever it can run
    backfit: bool | str = "auto"
    # The second phase: when the validation NLL first stalls for `patience` epochs, go back
    # to the best epoch and train on until it stalls again with the gradient's noise cut
    # batch_growth-fold: by batches that much larger where the batch NLL allows, by a lower
    # rate for the rest (second_phase; lr_decay, if given, sets the rate). Larger batches
    # cut the noise as a lower rate does, with fewer and cheaper steps (Smith et al. 2018,
    # "Don't decay the learning rate, increase the batch size"). None (and no lr_decay):
    # stop at the first stall, as the paper trains. "auto": AUTO_GROWTH, unless backfitting
    # at the exact θ̂ follows (Gaussian nn() models), which does the phase's work: once
    # backfitted, the phase changed the test MSE by at most 0.0031 in eleven pairs of fits,
    # for up to two thirds of the fit's time (docs/lmmnn.md, "Backfitting"); lr_decay or
    # phase_patience ask for the phase anyway
    batch_growth: int | str | None = "auto"
    lr_decay: float | None = None
    # epochs without improvement that end the second phase (None: patience). Its epochs
    # are cheaper and its validation NLL steadier; with many small levels (longitudinal,
    # q = 10,000) 30 lowered the test MSE for 1.4–2 times the time (docs/lmmnn.md, "Many
    # small levels")
    phase_patience: int | None = None


def check_control(control: TorchControl) -> TorchControl:
    """Refuse any setting the engine cannot train with, naming the option and its value;
    returns the settings as plain Python values (numpy's numbers, paths and torch devices
    as int, float, bool and str), which the checkpoint's fingerprint and a saved model's
    JSON hold."""
    for name, least in {"batch_size": 1, "epochs": 1, "patience": 0}.items():
        require_whole(name, getattr(control, name), least)
    for name, least in {"threads": 1, "seed": 0, "phase_patience": 1, "quadrature": 1}.items():
        require_whole(name, getattr(control, name), least, optional=True)
    if not (isinstance(control.batch_growth, str) and control.batch_growth == "auto"):
        require_whole("batch_growth", control.batch_growth, 2, optional=True, also="'auto'")
    require_number("lr", control.lr, positive=True, example=" (e.g. 1e-3)")
    require_number("weight_decay", control.weight_decay, positive=False)
    if not (is_number(control.validation) and 0 <= control.validation < 1):
        raise ModelError(f"validation must be a share of the rows in [0, 1) (e.g. 0.1), not "
                         f"{control.validation!r}")
    for name in ("verbose", "refine", "resume", "cuda_graphs"):
        require_flag(name, getattr(control, name))
    if control.batching not in BATCHING:
        raise ModelError(f"batching must be one of {', '.join(map(repr, BATCHING))}, not "
                         f"{control.batching!r}")
    if not (control.backfit is True or control.backfit is False or control.backfit == "auto"):
        raise ModelError(f"backfit must be True, False or 'auto', not {control.backfit!r}")
    if not isinstance(control.device, (str, torch.device)):
        raise ModelError(f"device must be 'auto', 'cpu', 'cuda' or a torch.device, not "
                         f"{control.device!r}")
    if control.checkpoint_dir is not None and \
            not isinstance(control.checkpoint_dir, (str, os.PathLike)):
        raise ModelError(f"checkpoint_dir must be a folder's path or None, not "
                         f"{control.checkpoint_dir!r}")
    decay = control.lr_decay
    if decay is not None and not (is_number(decay) and 0 < decay < 1):
        raise ModelError(f"lr_decay must be a number between 0 and 1 (e.g. 0.1) or None, "
                         f"not {decay!r}")
    for name in ("lr_decay", "phase_patience"):
        if getattr(control, name) is not None and not control.patience:
            raise ModelError(f"{name} needs early stopping: set patience= (the second phase "
                             f"begins when the validation NLL stalls for that many epochs)")
    return _plain(control)


def _plain(control: TorchControl) -> TorchControl:
    def as_int(v):
        return None if v is None else int(v)

    def as_float(v):
        return None if v is None else float(v)

    return replace(
        control, **{k: as_int(getattr(control, k)) for k in (
            "batch_size", "epochs", "patience", "quadrature", "threads", "seed",
            "phase_patience")},
        batch_growth=control.batch_growth if isinstance(control.batch_growth, str) else
        as_int(control.batch_growth),
        **{k: as_float(getattr(control, k)) for k in (
            "lr", "weight_decay", "validation", "lr_decay")},
        **{k: bool(getattr(control, k)) for k in ("verbose", "refine", "resume", "cuda_graphs")},
        device=str(control.device),
        checkpoint_dir=None if control.checkpoint_dir is None else os.fspath(
            control.checkpoint_dir))


def check_split(control: TorchControl, n: int) -> int:
    """The number of validation rows; refuses a split that leaves no training rows."""
    n_val = int(round(control.validation * n))
    if n - n_val < 1:
        raise ModelError(f"validation={control.validation!r} leaves no training rows of the "
                         f"{n:,}: lower it")
    return n_val


__all__ = ["AUTO_GROWTH", "BATCHING", "TorchControl", "check_control", "check_split"]
