"""The neural networks of nn() terms: the paper's MLP, or a module the user supplies."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from ..formula.terms import NNTerm

DEFAULT_HIDDEN = (100, 50, 25, 12)  # LMMNN paper, section 4
DEFAULT_DROPOUT = 0.25
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "elu": nn.ELU,
               "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU, "selu": nn.SELU}


class Dropout(nn.Dropout):
    """Dropout whose masks, on the CPU, come from a numpy generator when one is attached.

    The torch engine attaches its seeded generator while training: 16 random bits per unit
    from ``Generator.bytes`` are 4–7× cheaper than torch's CPU bernoulli, which is otherwise
    the largest cost of a training step (and the generator's state is checkpointed with the
    rest). The drop probability is rounded to a multiple of 2⁻¹⁶ and the kept units scaled
    by the exact inverse of the keep probability, so the layer stays unbiased. Without a
    generator, or on a GPU, it is torch's dropout."""

    generator: np.random.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or self.generator is None or \
                x.device.type != "cpu":
            return super().forward(x)
        threshold = round(self.p * 65536)
        bits = np.frombuffer(self.generator.bytes(2 * x.numel()), dtype=np.uint16)
        mask = (bits >= threshold).astype(np.float64 if x.dtype == torch.float64 else
                                          np.float32)
        mask *= 65536 / (65536 - threshold)
        return x * torch.from_numpy(mask.reshape(x.shape)).to(x.dtype)


def attach_generator(module: nn.Module, generator: np.random.Generator | None) -> None:
    """Let every lmerpy Dropout in ``module`` draw its masks from ``generator``."""
    for m in module.modules():
        if isinstance(m, Dropout):
            m.generator = generator


def build_network(term: NNTerm, in_features: int, modules: dict[str, nn.Module] | None,
                  bias: bool = True) -> nn.Module:
    """An MLP ``in_features -> hidden... -> 1`` from the term's options, or ``module=``."""
    options = dict(term.options)
    if "module" in options:
        name = options["module"]
        if not modules or name not in modules:
            raise ModelError(f"nn(..., module={name!r}) needs modules={{{name!r}: <torch "
                             f"module>}} in the call")
        module = modules[name]
        if not isinstance(module, nn.Module):
            raise ModelError(f"modules[{name!r}] is a {type(module).__name__}, not a "
                             f"torch.nn.Module")
        return module
    hidden = options.get("hidden", DEFAULT_HIDDEN)
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    if not all(isinstance(h, int) and h > 0 for h in hidden):
        raise ModelError(f"hidden must be positive whole numbers, not {hidden}")
    dropout = float(options.get("dropout", DEFAULT_DROPOUT))
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"dropout must be in [0, 1), not {dropout}")
    activation = options.get("activation", "relu")
    if activation not in ACTIVATIONS:
        raise ModelError(f"unknown activation {activation!r} (available: "
                         f"{', '.join(sorted(ACTIVATIONS))})")
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if options.get("batchnorm", False):
            layers.append(nn.BatchNorm1d(h))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, 1, bias=bias))
    return nn.Sequential(*layers)


def describe(module: nn.Module) -> str:
    """One line per layer, as the summary prints the network."""
    if isinstance(module, nn.Sequential):
        return " -> ".join(_layer(m) for m in module)
    return type(module).__name__


def _layer(m: nn.Module) -> str:
    if isinstance(m, nn.Linear):
        return f"Linear({m.in_features}, {m.out_features})"
    if isinstance(m, nn.Dropout):
        return f"Dropout({m.p:g})"
    return type(m).__name__


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def summed_output(networks: list[nn.Module], inputs: list[torch.Tensor], n: int
                  ) -> np.ndarray:
    """Σ_j nn_j(X_j) over ``n`` rows, as float64 numpy, without gradients: the networks'
    part of the fitted values (the modules' train/eval mode is the caller's)."""
    out = np.zeros(n)
    with torch.no_grad():
        for net, x in zip(networks, inputs):
            out += as_output(net(x)).double().cpu().numpy()
    return out


def as_output(values: torch.Tensor) -> torch.Tensor:
    """A network's output as a flat vector of one prediction per row."""
    return values.reshape(values.shape[0], -1)[:, 0] if values.ndim > 1 else values
