"""The torch engine: LMMNN (Simchoni & Rosset, JMLR 2023) — neural fixed effects and random
effects fitted jointly by minimising the mini-batch NLL, then BLUPs from the exact engine.

Training optimises the network(s), any linear coefficients and the covariance parameters
with Adam on ``batch_nll`` over batches cut from the rows sorted by level (batching.py);
early stopping watches the NLL of a validation split, and at its first stall a second
phase resumes from the best epoch with larger batches. The network is then backfitted by
full-batch L-BFGS on its marginal NLL at θ̂ (backfit.py: the exact θ̂ given the trained
network, or the trained θ where that is kept). Finally θ̂ and the network's output are
handed to the exact engine's penalised least squares over the whole training set: that
gives the BLUPs (DESIGN.md, no 10,000-row sampling), the linear coefficients profiled at θ̂
and their standard errors.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..design.covariance import RBFKernel
from ..design.model import ModelDesign
from ..design.subset import at_locations
from ..errors import ModelError, warn
from .adam import FusedAdam
from .backfit import backfit
from .batch_columns import batch_columns
from .batch_nll import CovarianceParams, batch_nll
from .batching import EpochBatches, epoch_order, local_order, locality_rank
from .checkpoint import load_checkpoint, save_checkpoint
from .exact import (
    ConvergenceWarning,
    ExactFit,
    SingularFitWarning,
    check_weights,
    drop_aliased,
    fit_lmer,
)
from .family import Family, gauss_hermite, negative_binomial, theta_ml
from .glmm import GlmerControl, GlmerFit, binomial_response, fit_glmer
from .glmm_nll import glmm_batch_nll
from .laplace_nll import laplace_batch_nll
from .negbin import optimise_size
from .networks import (
    as_output,
    attach_generator,
    build_network,
    describe,
    n_parameters,
    summed_output,
)
from .pls import PLS, CrossProducts
from .torch_control import AUTO_GROWTH, TorchControl, check_control, check_split
from .train_step import TrainingWarning, TrainStep

# The second phase's batches for an rbf term, whose batch NLL is a dense system of the
# locations present (its cost up to the cube of the rows), are at most this many rows (or
# batch_size, if larger).
DENSE_PHASE_BATCH = 1000
# The exact refinement of θ evaluates the profiled likelihood some 50–60 times (with the
# convergence checks), each a dense Cholesky when a spatial term is present: about 15 s a
# refinement at 3,000 locations on two cores, 5 minutes at 10,000 (KernelFactor;
# benchmarks/RESULTS_spatial_exact.md). Above this many locations θ is refined on the rows
# at a random this many of them (design/subset.py), and the BLUPs solved over all.
REFINE_SPATIAL_LIMIT = 3000
# The learning rate of a GLMM's dispersion φ or negative binomial size θ (on the log scale)
# is this many times the rest's. On crossed Gamma data (2,700 training rows, φ = 0.2) φ
# went from its start at the linear fit's moment, 3.1, to 0.26 in 40 epochs instead of
# to 1.15, and the trained fit's log-likelihood rose from −6,506 to −5,096
FAMILY_LR_FACTOR = 10.0


class FixedPart(nn.Module):
    """f(X) = Xβ + Σ_j nn_j(X_j): the linear coefficients and the networks (a fitted
    model's ``torch_info["modules"]``; a loaded one holds the networks alone, β in the fit)."""

    def __init__(self, p: int, beta0: np.ndarray, networks: list[nn.Module], dtype):
        super().__init__()
        self.beta = nn.Parameter(torch.as_tensor(beta0, dtype=dtype)) if p else None
        self.networks = nn.ModuleList(networks)

    def forward(self, X: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
        out = X @ self.beta if self.beta is not None else torch.zeros(
            X.shape[0], dtype=X.dtype, device=X.device)
        for net, x in zip(self.networks, inputs):
            out = out + as_output(net(x)).to(out.dtype)
        return out


def _plain(control: TorchControl) -> dict:
    """The settings as plain values (what a saved model's JSON keeps)."""
    return {k: v for k, v in control.__dict__.items()
            if isinstance(v, (int, float, str, bool, type(None)))}


def _device(name: str | torch.device) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ModelError(f"unknown device {name!r}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device={name!r}, but torch sees no CUDA GPU here "
                         f"(torch.cuda.is_available() is False); use device='auto' or 'cpu'")
    if device.type == "cuda" and device.index is not None and \
            device.index >= torch.cuda.device_count():
        raise ModelError(f"device={name!r}, but torch sees {torch.cuda.device_count()} CUDA "
                         f"GPU(s)")
    return device


def _uses_laplace(design: ModelDesign, control: TorchControl) -> bool:
    """Whether a GLMM's batch NLL is the Laplace approximation (laplace_nll.py) rather than
    the adaptive quadrature over the levels of one grouping factor (glmm_nll.py, paper eq.
    40): with several random terms or an rbf term (no independent groups), a vector term
    (the Laplace approximation is the adaptive rule with one node; the paper's fixed
    product rule underestimated the variances badly on groups of 200 rows: docs/lmmnn.md),
    or ``quadrature=1``."""
    r = design.random[0]
    laplace = len(design.random) > 1 or r.encoder is None or r.p > 1
    if laplace and control.quadrature not in (None, 1):
        raise ModelError(f"quadrature={control.quadrature} (adaptive Gauss–Hermite nodes) "
                         f"applies to a GLMM with a single random intercept, e.g. (1 | g); "
                         f"with random slopes, several random terms or an rbf term the torch "
                         f"engine integrates each batch by the Laplace approximation (as lme4 "
                         f"allows nAGQ > 1 only for one scalar term): leave quadrature unset")
    return laplace or control.quadrature == 1


def _nodes(control: TorchControl) -> int:
    """The adaptive rule's nodes for one random intercept (the paper's 5 unless set)."""
    return 5 if control.quadrature is None else int(control.quadrature)


def fit_torch(design: ModelDesign, control: TorchControl | None = None,
              modules: dict[str, nn.Module] | None = None, family: Family | None = None,
              weights: np.ndarray | None = None, estimate_size: bool = False,
              size_tol: float = 5e-5) -> ExactFit:
    """Train an LMMNN model on ``design`` and return a fit the result object understands.

    With a ``family`` the loss is the marginal NLL by Gauss–Hermite quadrature over batches
    of whole groups (paper eq. 40), or with a vector term, several random terms or an rbf
    term each batch's Laplace approximation (laplace_nll.py); log φ is trained too for a
    family with a dispersion, and the fit is a GlmerFit. ``estimate_size``: a negative
    binomial's log θ is trained too (from ``family.theta``, or if None from MASS's
    theta.ml at the linear start), then refined as glmer.nb does (``size_tol``:
    negbin.py).
    """
    control = control or TorchControl()
    control = check_control(control)
    threads = control.threads
    if threads is None and control.batch_size <= 4096:
        threads = 1
    # backfitting's full-batch products gain from every thread (two cores: 1.9 times as
    # fast), the small batches of training do not
    full_threads = control.threads or torch.get_num_threads()
    with _num_threads(threads):
        return _fit_torch(design, control, modules, family, weights, full_threads,
                          estimate_size, size_tol)


@contextmanager
def _num_threads(threads: int | None):
    """torch's CPU threads set to ``threads`` (None: as they are) for the block."""
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(int(threads))
        yield
    finally:
        torch.set_num_threads(before)


def _fit_torch(design: ModelDesign, control: TorchControl, modules, family, weights,
               full_threads: int | None = None, estimate_size: bool = False,
               size_tol: float = 5e-5):
    settings = _plain(control)  # as asked, before "auto" is decided (update() refits by it)
    if not design.random:
        raise ModelError("no random-effects terms in the formula: add e.g. (1 | group)")
    if family is None and design.y.ndim != 1:
        raise ModelError("the torch engine fits a single numeric response")
    laplace = family is not None and _uses_laplace(design, control)
    if family is not None and len(design.random) == 1 and design.random[0].encoder is not None:
        # with one grouping factor the NLL factorises over whole groups: batches keep them
        control = replace(control, batching="group")
    if control.seed is not None:
        torch.manual_seed(control.seed)
    rng = np.random.default_rng(control.seed)
    device = _device(control.device)
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    n = design.n

    X, names, dropped = drop_aliased(design.X, design.X_names)
    offset = design.offset if design.offset is not None else np.zeros(n)
    if family is None:
        y_adj = design.y - offset
        weights = check_weights(weights, n)
        w = np.ones(n) if weights is None else weights
        # weighted least squares: the residual sd of a unit weight
        if X.shape[1]:
            sw = np.sqrt(w)
            beta0 = np.linalg.lstsq(X * sw[:, None], y_adj * sw, rcond=None)[0]
            resid = y_adj - X @ beta0
        else:
            beta0, resid = np.zeros(0), y_adj - np.average(y_adj, weights=w)
        sigma0 = max(float(np.sqrt(np.mean(w * resid**2))) / math.sqrt(2.0), 1e-3)
    else:
        y_adj, prior_w = binomial_response(np.asarray(design.y, float), family, weights)
        start_eta = family.link.link(family.mu_start(y_adj, prior_w)) - offset
        beta0 = np.linalg.lstsq(X, start_eta, rcond=None)[0] if X.shape[1] else np.zeros(0)
        sigma0 = 1.0  # no residual variance: σ ≡ 1, so θ is the random effects' factor
    has_intercept = "(Intercept)" in names
    networks = [build_network(inp.term, inp.X.shape[1], modules, bias=not has_intercept)
                for inp in design.nn]
    fixed = FixedPart(X.shape[1], beta0, networks, dtype).to(device)
    for net in fixed.networks:
        net.to(device=device)
        attach_generator(net, rng)
    cov = CovarianceParams(design.random, sigma0, dtype).to(device)
    cov.coords = [c.to(device) if c is not None else None for c in cov.coords]
    if family is not None:
        cov.log_sigma.requires_grad_(False)
        with torch.no_grad():  # start the random effects' sds at 0.5 on the link scale
            for r, raw in zip(design.random, cov.factors):
                (raw[:1] if r.encoder is None else raw.diagonal()).fill_(math.log(0.5))
        if family.has_dispersion:  # log φ, trained with the rest, from the Pearson moment
            mu0 = family.link.inverse(X @ beta0 + offset)
            phi0 = float(np.mean(prior_w * (y_adj - mu0) ** 2 / family.variance(mu0)))
            cov.log_phi = nn.Parameter(torch.tensor(
                math.log(phi0 if np.isfinite(phi0) and phi0 > 0 else 1.0), dtype=dtype))
        if estimate_size:  # log θ of a negative binomial, from theta.ml at the linear start
            size0 = family.theta or theta_ml(y_adj, family.link.inverse(X @ beta0 + offset),
                                             prior_w, limit=20)[0]
            cov.log_size = nn.Parameter(torch.tensor(math.log(size0), dtype=dtype))
    if family is not None and not laplace:
        gh_nodes, gh_weights = gauss_hermite(_nodes(control))
        gh = (torch.as_tensor(gh_nodes, dtype=dtype, device=device),
              torch.as_tensor(np.log(gh_weights), dtype=dtype, device=device))

    t = {
        "X": torch.as_tensor(X, dtype=dtype, device=device),
        "y": torch.as_tensor(y_adj, dtype=dtype, device=device),
        "nn": [torch.as_tensor(inp.X, dtype=torch.float32, device=device)
               for inp in design.nn],
        "Xk": [torch.as_tensor(r.X, dtype=dtype, device=device) for r in design.random],
    }
    if family is not None:
        t["w"] = torch.as_tensor(prior_w, dtype=dtype, device=device)
        t["offset"] = torch.as_tensor(offset, dtype=dtype, device=device)
    elif weights is not None:
        t["w"] = torch.tensor(weights, dtype=dtype, device=device)
    # the family's parameter being trained, on the log scale: log φ of a Gamma, inverse
    # Gaussian or Gaussian response, or a negative binomial's log θ (None for the others)
    log_family = getattr(cov, "log_phi", getattr(cov, "log_size", None))

    def family_parameter() -> torch.Tensor | None:
        """φ or θ as log_density takes it."""
        return None if log_family is None else log_family.exp()

    def sigma2() -> float:
        """The history's σ²: the LMM's residual variance, or a GLMM's dispersion."""
        if hasattr(cov, "log_phi"):
            return float(cov.log_phi.detach().exp())
        return float(cov.sigma.detach()) ** 2

    def nb_size() -> dict:
        """A negative binomial's size θ being trained, under lme4's name (for the history)."""
        return {"glmer.nb.theta": float(cov.log_size.detach().exp())} if estimate_size else {}

    params = [p for p in list(fixed.parameters()) + list(cov.parameters()) if p.requires_grad]
    codes = [np.asarray(r.codes) for r in design.random]
    graphs = _captures(device, control) and family is None and \
        control.batching != "group"  # fixed batch sizes
    # the family's parameter gets its own rate: it starts from a moment of the linear
    # start, which holds all the variance the random effects and the network will explain,
    # often a factor of ten or more from its estimate
    groups = [{"params": [p for p in params if p is not log_family]}]
    if log_family is not None:
        groups.append({"params": [log_family], "lr": control.lr * FAMILY_LR_FACTOR})
    opt = _adam(groups, control, capturable=graphs)

    rows = rng.permutation(n)
    n_val = check_split(control, n)
    backfits = _backfits(control, design, family, bool(n_val))
    control = replace(control, batch_growth=_growth(control, design, backfits))
    val_rows, train_rows = np.sort(rows[:n_val]), np.sort(rows[n_val:])
    # sorted and group batching order the rows by the levels of the first random term (for
    # an rbf term: by location; the kernel still links batches); group batches end only
    # at the end of a level, sorted ones every batch_size rows
    groups = codes[0] if control.batching != "random" else None
    first = design.random[0].cov
    # where an rbf term's θ is kept as trained or refined on a subset of its locations, its
    # sorted batches follow space, so that a batch holds nearby locations and training
    # learns the lengthscale; where θ is refined exactly on all of them afterwards, whole
    # locations in a random order did better (docs/lmmnn.md)
    rank = locality_rank(first.coords) if control.batching == "sorted" and isinstance(
        first, RBFKernel) and not (_refines(control, design)
                                   and _locations(design) <= REFINE_SPATIAL_LIMIT) else None

    def epoch_batches(rows: np.ndarray, size: int, shuffle: bool = True) -> EpochBatches:
        if rank is not None:
            order = local_order(rows, rng if shuffle else None, groups, rank, size)
            return EpochBatches.build(t, codes, order, None, size, device)
        order, order_groups = epoch_order(rows, rng if shuffle else None, groups)
        whole = order_groups if control.batching == "group" else None
        return EpochBatches.build(t, codes, order, whole, size, device)

    def nll_of(batch: dict) -> torch.Tensor:
        f = fixed(batch["X"], batch["nn"])
        if laplace:
            U = batch_columns(cov, batch["Xk"], batch["segments"], batch["rows"], dtype)
            return laplace_batch_nll(f + batch["offset"], U, batch["y"], batch["w"], family,
                                     family_parameter())
        if family is not None:
            return glmm_batch_nll(f + batch["offset"], batch["y"], batch["w"], None,
                                  batch["Xk"][0], cov.chol(0), *gh, family,
                                  segments=batch["segments"][0], phi=family_parameter())
        return batch_nll(batch["y"] - f, cov, None, batch["Xk"], segments=batch["segments"],
                         weights=batch.get("w"))

    step = TrainStep(nll_of, opt, params,
                     [int(c.max()) + 1 for c in codes] if graphs else None)

    history: list[dict] = []
    theta_names = design.theta_names()  # the history's θ columns
    best = (math.inf, None, 0)
    stale = 0
    stop_reason = "maximum number of epochs reached"
    stopped = False
    second_at = None  # the epoch after which the second phase began
    batch_size = val_size = control.batch_size
    start_epoch = 1
    fingerprint = _fingerprint(design, control, family, weights)
    # the validation batches are fixed, in the data's order (by level with group batching),
    # so that every epoch is judged on the same NLL (as Keras, which the paper used,
    # evaluates validation data)
    val_batches = epoch_batches(val_rows, val_size, shuffle=False) if n_val else None
    if control.resume:
        if not control.checkpoint_dir:
            raise ModelError("resume=True needs checkpoint_dir=")
        state = load_checkpoint(control.checkpoint_dir, fingerprint)
        if state is not None:
            fixed.load_state_dict(state["fixed"])
            cov.load_state_dict(state["cov"])
            opt.load_state_dict(state["opt"])
            best = (state["best_val"], (state["best_fixed"], state["best_cov"]),
                    state["best_epoch"]) if state["best_fixed"] is not None else best
            stale, history = state["stale"], list(state["history"])
            second_at = state["second_at"]
            stop_reason, stopped = state["stop_reason"], state["stopped"]
            batch_size, val_size = state["batch_size"], state["val_batch_size"]
            if n_val and val_size != control.batch_size:
                val_batches = epoch_batches(val_rows, val_size, shuffle=False)
            rng.bit_generator.state = state["numpy_rng"]
            torch.set_rng_state(state["torch_rng"])
            start_epoch = state["epoch"] + 1
    progress = _progress(control)
    with progress as bar:
        task = bar.add_task("training", total=control.epochs) if bar else None
        for epoch in range(start_epoch, control.epochs + 1):
            if stopped:
                break
            started = time.perf_counter()
            fixed.train()
            total, finite, size = _train_epoch(step, opt, epoch_batches, train_rows,
                                               batch_size, rng)
            if size < val_size and n_val:  # out of GPU memory: smaller validation batches too
                val_size = size
                val_batches = epoch_batches(val_rows, size, shuffle=False)
            batch_size = size
            if not finite:
                stop_reason = f"non-finite loss in epoch {epoch}; kept the best epoch so far"
                warn(f"training stopped: {stop_reason}", TrainingWarning)
                break
            train_nll = total / len(train_rows)
            fixed.eval()
            with torch.no_grad():
                if n_val:
                    val_nll = float(sum(nll_of(val_batches.batch(b))
                                        for b in range(len(val_batches)))) / n_val
                else:
                    val_nll = train_nll
            theta = cov.theta()
            history.append({"epoch": epoch, "train_nll": train_nll, "val_nll": val_nll,
                            "lr": opt.param_groups[0]["lr"], "batch_size": batch_size,
                            "sigma2": sigma2(), **nb_size(),
                            **{name: float(v) for name, v in zip(theta_names, theta)},
                            "seconds": time.perf_counter() - started})
            if bar:
                bar.update(task, advance=1, description=(
                    f"epoch {epoch}  train {train_nll:.4f}  val {val_nll:.4f}  "
                    f"σ² {sigma2():.4g}  {cov.describe()}"
                    + (f"  θ {nb_size()['glmer.nb.theta']:.4g}" if estimate_size else "")))
            if val_nll < best[0] - 1e-12:
                best = (val_nll, (copy.deepcopy(fixed.state_dict()),
                                  copy.deepcopy(cov.state_dict())), epoch)
                stale = 0
            else:
                stale += 1
                limit = control.patience if second_at is None else \
                    control.phase_patience or control.patience
                if control.patience and stale >= limit:
                    grown, lr_factor = second_phase(control, design, batch_size,
                                                    len(train_rows))
                    if (lr_factor < 1 or grown > batch_size) and second_at is None and \
                            epoch < control.epochs:
                        # the second phase starts from the best epoch
                        fixed.load_state_dict(best[1][0])
                        cov.load_state_dict(best[1][1])
                        if lr_factor < 1:
                            step.scale_lr(lr_factor)
                        batch_size = grown
                        second_at, stale = epoch, 0
                    else:
                        stop_reason = (f"no improvement in validation NLL for "
                                       f"{limit} epochs")
                        stopped = True
                        if second_at is not None:
                            phase = _describe_phase(batch_size, opt.param_groups[0]["lr"]
                                                  / control.lr, second_at, control)
                            stop_reason += f" ({phase})"
            if control.checkpoint_dir:
                save_checkpoint(control.checkpoint_dir, {
                    "fingerprint": fingerprint, "epoch": epoch,
                    "fixed": fixed.state_dict(), "cov": cov.state_dict(),
                    "opt": opt.state_dict(), "best_val": float(best[0]),
                    "best_fixed": best[1][0] if best[1] else None,
                    "best_cov": best[1][1] if best[1] else None, "best_epoch": best[2],
                    "stale": stale, "history": history, "stop_reason": stop_reason,
                    "stopped": stopped, "batch_size": batch_size, "val_batch_size": val_size,
                    "second_at": second_at,
                    "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()})
    if best[1] is None:
        raise ModelError("training produced no finite loss: check the data's scale, or lower "
                         "the learning rate")
    fixed.load_state_dict(best[1][0])
    cov.load_state_dict(best[1][1])
    fixed.eval()
    for net in networks:
        attach_generator(net, None)  # the fitted model does not keep the training generator

    nn_out = summed_output(fixed.networks, t["nn"], n)
    theta = cov.theta()

    nn_predict = nn_predictor(list(fixed.networks), device)
    trained_theta = theta
    locations = _locations(design)
    # a GLMM's θ is refined by glmer's Laplace approximation on every row, each PIRLS step a
    # dense factor of an rbf term's kernel: not above REFINE_SPATIAL_LIMIT locations
    refine = control.refine and locations <= REFINE_SPATIAL_LIMIT if family is not None \
        else _refines(control, design)
    subset = _refine_subset(design, rng) if refine and family is None else None
    # (a GLMM's summary says itself whether θ is glmer's Laplace estimate given the network)
    theta_from = None if family is not None else \
        "exact ML given the network" if refine else "training"
    if subset is not None:
        theta_from += (f", on the rows at a random {len(subset[1]):,} of the {locations:,} "
                       f"spatial locations")
    if control.refine and not refine:
        theta_from = "training" if family is not None else theta_from
        theta_from += (f" (exact refinement skipped: several spatial terms of more than "
                       f"{REFINE_SPATIAL_LIMIT:,} locations)" if family is None else
                       f" (refinement by the Laplace approximation skipped: {locations:,} "
                       f"spatial locations, more than {REFINE_SPATIAL_LIMIT:,})")

    def refit(nn_out: np.ndarray, start: np.ndarray) -> ExactFit:
        """The exact ML fit of θ given the network's output (on the subset's rows, if any)."""
        given, w = replace(design, offset=offset + nn_out), weights
        if subset is not None:
            given, kept = at_locations(given, *subset)
            w = None if weights is None else weights[kept]
        return fit_lmer(given, REML=False, weights=w,
                        start=np.maximum(start, design.theta_lower()))

    backfitted = None
    if backfits:
        if refine:  # backfit at the exact θ̂ given the trained network, else at the trained θ
            with warnings.catch_warnings():  # the final refinement reports what still holds
                warnings.simplefilter("ignore")
                theta = refit(nn_out, theta).theta
        with _num_threads(full_threads):
            backfitted = backfit(list(fixed.networks), t["nn"], design, X, y_adj, theta,
                                 train_rows, val_rows, weights=weights)
        nn_out = summed_output(fixed.networks, t["nn"], n)
    if family is not None:
        trained = family_parameter()
        trained = None if trained is None else float(trained.detach())
        fit = _glmm_fit(design, family, weights, offset + nn_out, theta, refine,
                        trained if family.has_dispersion else None,
                        trained if estimate_size else None, size_tol)
    elif refine:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            refined = refit(nn_out, theta)
        for w in caught:
            if issubclass(w.category, (SingularFitWarning, ConvergenceWarning)):
                warn(str(w.message), w.category)
        theta = refined.theta
    if family is None and refine and subset is None:
        # the exact fit already holds the BLUPs and linear coefficients at its θ̂
        pls, solution, sigma, b = refined.pls, refined.solution, refined.sigma, refined.b
    elif family is None:
        # BLUPs and linear coefficients at θ̂ through the exact engine's solve (DESIGN.md)
        cp = CrossProducts.build(X, design.Z, y_adj - nn_out, weights)
        pls = PLS(design.random, cp, design.split_theta)
        solution = pls.solve(theta, spherical=False)
        sigma = pls.sigma(solution, REML=False)
        b = solution.b
    info = {
        "trained_theta": trained_theta, "refined": refine, "theta_from": theta_from,
        # the spatial term and locations (indices into its levels) θ was refined on
        "refined_on": None if subset is None else (
            design.random[subset[0]].group, subset[1]),
        # nodes per dimension of a GLMM's batch NLL; 1 for the Laplace approximation
        "quadrature": (1 if laplace else _nodes(control)) if family is not None else None,
        "engine": "torch", "epochs": len(history), "best_epoch": best[2],
        "backfit": None if backfitted is None else {
            "method": "L-BFGS", "iterations": backfitted.iterations,
            "best_iteration": backfitted.best_iteration,
            "evaluations": backfitted.evaluations,
            "best_val_mse": backfitted.best_val_mse, "history": backfitted.history},
        "best_val_nll": best[0], "stop_reason": stop_reason, "device": str(device),
        "networks": [{"term": str(inp.term), "layers": describe(net),
                      "parameters": n_parameters(net), "inputs": len(inp.names)}
                     for inp, net in zip(design.nn, fixed.networks)],
        "history": pd.DataFrame(history),
        "nn_predict": nn_predict if design.nn else None,
        "modules": fixed, "covariance": cov,
        "control": _plain(control), "settings": settings,
    }
    if family is not None:
        fit.optinfo["torch"] = info
        return fit
    optinfo = {"optimizer": "adam", "code": 0, "evals": len(history), "messages": [],
               "warnings": [], "torch": info}
    return ExactFit(design, False, X, names, dropped, design.y, offset + nn_out, weights, theta,
                    solution, sigma, b, pls, optinfo)


def _locations(design: ModelDesign) -> int:
    return max(_spatial_sizes(design), default=0)


def second_phase(control: TorchControl, design: ModelDesign, batch_size: int,
                 n_train: int) -> tuple[int, float]:
    """The second phase's batch size and the factor on its rate.

    The phase cuts the gradient's noise ``batch_growth``-fold: the batches grow that much,
    to at most the training rows, for an rbf term to at most DENSE_PHASE_BATCH rows unless
    the first phase's batches were already larger, and with several random terms not at
    all (a batch's system is then dense in the levels of all but the sorted term, about
    one per row: batch_nll.py; at 1,000 rows a three-factor fit took several times as
    long, docs/lmmnn.md). The rate takes the part the batches could not: × grown /
    (batch_size · batch_growth), as for SGD, whose noise scales with rate / batch size
    (Smith et al. 2018). ``lr_decay``, when given, sets the rate's factor instead.
    """
    growth = control.batch_growth
    grown = batch_size
    if growth and len(design.random) == 1:
        grown = batch_size * growth
        if isinstance(design.random[0].cov, RBFKernel):
            grown = min(grown, max(batch_size, DENSE_PHASE_BATCH))
        grown = max(batch_size, min(grown, n_train))
    if control.lr_decay:
        return grown, float(control.lr_decay)
    return grown, grown / (batch_size * growth) if growth else 1.0


def _describe_phase(batch_size: int, lr_factor: float, epoch: int, control: TorchControl) -> str:
    """The second phase, in words, for the stop reason."""
    what = []
    if batch_size > control.batch_size:
        what.append(f"batches of {batch_size:,} rows")
    if lr_factor < 1:
        what.append(f"learning rate × {lr_factor:.3g}")
    return f"second phase after epoch {epoch}: {', '.join(what)}"


def _refines(control: TorchControl, design: ModelDesign) -> bool:
    """Whether θ of a Gaussian model is re-estimated exactly after training: asked for, and
    at most one spatial term of more than REFINE_SPATIAL_LIMIT locations (refined on a
    subset of them: ``_refine_subset``)."""
    big = [s for s in _spatial_sizes(design) if s > REFINE_SPATIAL_LIMIT]
    return control.refine and len(big) <= 1


def _refine_subset(design: ModelDesign, rng: np.random.Generator
                   ) -> tuple[int, np.ndarray] | None:
    """The spatial term and the random REFINE_SPATIAL_LIMIT of its locations whose rows θ
    is refined on, where it has more (the subset-of-data estimate); else None."""
    sizes = _spatial_sizes(design)
    if max(sizes, default=0) <= REFINE_SPATIAL_LIMIT:
        return None
    term = int(np.argmax(sizes))
    return term, np.sort(rng.choice(sizes[term], REFINE_SPATIAL_LIMIT, replace=False))


def _spatial_sizes(design: ModelDesign) -> list[int]:
    """Locations per random term (0 for grouped terms)."""
    return [len(r.cov.coords) if isinstance(r.cov, RBFKernel) else 0 for r in design.random]


def _backfits(control: TorchControl, design: ModelDesign, family, possible: bool) -> bool:
    """Whether to backfit the network after training (backfit.py). ``"auto"``: for every
    Gaussian nn() model where it can run (a validation split, to stop it): the
    mini-batch NLL's early stopping ends while the network is still drifting closer, and
    with several random terms its batches leave all but one term's effects as noise; full-
    batch L-BFGS on the exact likelihood at θ̂ fixes both (docs/lmmnn.md, "Backfitting")."""
    if control.backfit is False:
        return False
    if control.backfit == "auto":
        return possible and family is None and bool(design.nn)
    if family is not None or not design.nn:
        raise ModelError("backfit=True applies to Gaussian models with nn() terms")
    if not possible:
        raise ModelError("backfit=True needs a validation split (validation > 0): its early "
                         "stopping watches the validation rows")
    return True


def _growth(control: TorchControl, design: ModelDesign, backfits: bool) -> int | None:
    """``batch_growth`` as training uses it, given whether the network will be backfitted.
    ``"auto"``: no second phase where the network is backfitted at the exact θ̂ afterwards
    — backfitting then does the phase's work on the network, the exact refit its work on
    θ; with one of them missing (GLMMs, spatial terms whose θ is kept as trained,
    ``refine=False``, ``backfit=False``), or ``lr_decay`` or ``phase_patience`` given, a
    second phase of AUTO_GROWTH-fold batches."""
    growth = control.batch_growth
    if growth != "auto":
        return growth
    asked = control.lr_decay is not None or control.phase_patience is not None
    if backfits and not asked and _refines(control, design):
        return None
    return AUTO_GROWTH


def nn_predictor(networks: list[nn.Module], device: torch.device):
    """f̂(X) of the trained networks on new nn() inputs (float32, already standardised)."""
    def predict(inputs: list[np.ndarray]) -> np.ndarray:
        tensors = [torch.as_tensor(x, dtype=torch.float32, device=device) for x in inputs]
        return summed_output(networks, tensors, len(inputs[0]) if inputs else 0)
    return predict


def _captures(device: torch.device, control: TorchControl) -> bool:
    """Whether full-size training steps replay CUDA graphs (train_step.py): on a GPU,
    unless ``cuda_graphs=False``."""
    return device.type == "cuda" and control.cuda_graphs


def _adam(params: list, control: TorchControl, capturable: bool = False
          ) -> torch.optim.Optimizer:
    """Adam with the fused kernel (one update of all parameters, CPU or CUDA; adam.py), else
    foreach; ``params`` the parameters or parameter groups (a group's own ``lr`` is kept);
    ``capturable`` keeps its step count on the device, for CUDA graphs."""
    options = dict(lr=control.lr, weight_decay=control.weight_decay, capturable=capturable)
    try:
        return FusedAdam(params, **options)
    except (RuntimeError, ValueError):  # parameters on a device without the fused kernel
        return torch.optim.Adam(params, foreach=True, **options)


def _train_epoch(step: TrainStep, opt, epoch_batches, train_rows: np.ndarray,
                 batch_size: int, rng: np.random.Generator) -> tuple[float, bool, int]:
    """One pass over the training rows. Returns (Σ NLL, all finite, batch size). The NLL is
    summed on the device and read once (a read per step would stall a GPU); a non-finite
    sum ends training, and the best epoch so far is kept. A GPU that runs out of memory
    gets the epoch again with half the batch size, and a warning."""
    while True:
        state = rng.bit_generator.state
        try:
            batches = epoch_batches(train_rows, batch_size)
            total = torch.zeros((), dtype=torch.float64, device=batches.device)
            for b in range(len(batches)):
                total += step(batches.batch(b), batch_size)
            value = float(total)
            return value, math.isfinite(value), batch_size
        except torch.cuda.OutOfMemoryError:
            if batch_size <= 1:
                raise ModelError("the GPU ran out of memory even with batches of one row; "
                                 "use device='cpu'") from None
            opt.zero_grad()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            batch_size = max(1, batch_size // 2)
            rng.bit_generator.state = state
            warn(f"out of GPU memory: retrying the epoch with batch_size={batch_size}",
                 TrainingWarning)


def _fingerprint(design: ModelDesign, control: TorchControl, family,
                 weights: np.ndarray | None = None) -> str:
    """What a checkpoint must match to be resumed: model, data (prior weights included) and
    the training settings that shape the run (the number of epochs may grow)."""
    y = np.asarray(design.y, dtype=np.float64)
    w = "" if weights is None else \
        f"|w={float(np.sum(weights)):.17g}/{float(np.sum(weights * y)):.17g}"
    return (f"{design.formula}|n={design.n}|y={float(np.sum(y)):.17g}/{float(np.sum(y * y)):.17g}"
            f"{w}"
            f"|family={family}|seed={control.seed}|lr={control.lr}|batch={control.batch_size}"
            f"|batching={control.batching}|validation={control.validation}"
            f"|patience={control.patience}|q={control.quadrature}|decay={control.lr_decay}"
            f"|phase_patience={control.phase_patience}"
            f"|growth={control.batch_growth}")


def _glmm_fit(design: ModelDesign, family: Family, weights, offset: np.ndarray,
              theta: np.ndarray, refine: bool, phi: float | None = None,
              size: float | None = None, size_tol: float = 5e-5) -> GlmerFit:
    """The GLMM after training, with the network's output as an offset: θ re-estimated by
    glmer's Laplace approximation (``refine``) or kept at its trained value — and a trained
    negative binomial ``size`` by glmer.nb's outer loop from it (negbin.py), or kept; β and
    the modes by PIRLS; a single scalar term's effects are then its posterior means by
    adaptive quadrature (with several terms, the conditional modes, as glmer's ranef)."""
    if size is not None:
        family = negative_binomial(size, family.link.name)
    given = replace(design, offset=offset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_glmer(given, family, nAGQ=1, weights=weights,
                        control=GlmerControl(check_separation=False),
                        start=np.maximum(theta, design.theta_lower()),
                        fix_theta=not refine, phi=phi)
        if size is not None and refine:
            fit = optimise_size(given, fit, size_tol)
        elif size is not None:  # the size as trained (update() estimates it anew)
            fit.optinfo["glmer_nb"] = {"evaluations": 0, "start_theta": size}
    for w in caught:
        if issubclass(w.category, (SingularFitWarning, ConvergenceWarning)):
            warn(str(w.message), w.category)
    r = design.random[0]
    if len(design.random) == 1 and r.encoder is not None and r.p == 1:
        # the fit's own PIRLS state at (θ̂, β̂): no second PIRLS run
        u_mean = fit.pirls.posterior_means(fit.modes, fit.theta)
        fit.b = np.asarray(fit.pirls.lambda_map(fit.theta) @ u_mean).ravel()
        fit.eta = fit.offset + fit.X @ fit.solution.beta + r.Z @ fit.b
        fit.mu = fit.family.link.inverse(fit.eta)
        fit.optinfo["random_effects"] = "posterior means (adaptive Gauss-Hermite, 25 nodes)"
    else:
        fit.optinfo["random_effects"] = "conditional modes"
    return fit


def _progress(control: TorchControl):
    """A rich progress bar when verbose and writing to a terminal or a Jupyter notebook
    (there rich draws it in a widget, so only with ipywidgets installed: the ``notebook``
    extra); otherwise nothing."""
    from contextlib import nullcontext

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    shown = _has_widgets() if console.is_jupyter else console.is_terminal
    if not control.verbose or not shown:
        return nullcontext(None)
    return Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def _has_widgets() -> bool:
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


__all__ = ["TorchControl", "TrainingWarning", "fit_torch"]
