"""The neural networks of nn() terms: the paper's MLP, or a module the user supplies."""

from __future__ import annotations

import math

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
    from the generator are 4–7× cheaper than torch's CPU bernoulli, which is otherwise the
    largest cost of a training step (and the generator's state is checkpointed with the
    rest). The drop probability is rounded to a multiple of 2⁻¹⁶ and the kept units scaled
    by the exact inverse of the keep probability, so the layer stays unbiased. Without a
    generator, or on a GPU, it is torch's dropout."""

    generator: np.random.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.draws_masks(x):
            return super().forward(x)
        return x * self.mask(x.shape, x.dtype)

    def draws_masks(self, x: torch.Tensor) -> bool:
        """Whether this forward pass draws its mask from the generator (else torch's)."""
        return self.training and self.p > 0 and self.generator is not None and \
            x.device.type == "cpu"

    def mask(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """The next mask from the generator: 0 or 1/(1 − p) per unit."""
        threshold = round(self.p * 65536)
        count = math.prod(shape)
        mask = (random_bits16(self.generator, count) >= threshold).astype(
            np.float64 if dtype == torch.float64 else np.float32)
        mask *= 65536 / (65536 - threshold)
        return torch.from_numpy(mask.reshape(shape)).to(dtype)


def random_bits16(generator: np.random.Generator, count: int) -> np.ndarray:
    """``count`` 16-bit draws, the bits of ``generator.bytes(2 * count)``. For PCG64 (numpy's
    default) they are read as whole 64-bit outputs, about twice as fast as ``bytes`` (72
    against 111–250 µs for 100,000 draws here), which draws 32 bits at a time and copies
    them twice; the stream is the same where ``bytes`` would
    use whole 64-bit outputs too (no 32-bit half kept from an earlier draw or left over)."""
    bitgen = generator.bit_generator
    if isinstance(bitgen, np.random.PCG64) and count > 0 and count % 4 in (0, 3) and \
            not bitgen.state["has_uint32"]:
        return bitgen.random_raw(-(-count // 4)).view(np.uint16)[:count]
    return np.frombuffer(generator.bytes(2 * count), dtype=np.uint16)


class _WideLinear(torch.autograd.Function):
    """``x W' + b`` whose weight gradient is formed as (x'g)' instead of torch's g'x: the
    same matrix, but where a layer widens (fewer inputs than outputs: the paper's first
    layer, 10 → 100) MKL's sgemm takes about five times longer over g'x (out × rows times
    rows × in) than over x'g: 250 against 48 µs at 1,000 rows on one thread, 1.2 against
    0.25 ms at 8,192 rows on two (a training step, a backfitting pass)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return torch.addmm(bias, x, weight.t()) if bias is not None else x @ weight.t()

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad @ weight if ctx.needs_input_grad[0] else None
        grad_w = (x.t() @ grad).t().contiguous() if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


class Linear(nn.Linear):
    """``nn.Linear`` whose weight gradient, in a widening layer on the CPU, is formed the
    faster way (``_WideLinear``); the same parameters, initial values and state dict as
    ``nn.Linear`` (cuBLAS has no such slow case: a GPU keeps torch's own)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_features < self.out_features and x.dim() == 2 and \
                x.device.type == "cpu" and torch.is_grad_enabled() and self.weight.requires_grad:
            return _WideLinear.apply(x, self.weight, self.bias)
        return super().forward(x)


class _TrainingMLP(torch.autograd.Function):
    """The training pass of lmerpy's MLP (Linear → ReLU → Dropout, ..., Linear) as one
    autograd node, its backward written out: at the paper's batch of 100 rows the autograd
    engine's twenty-odd nodes a step cost about as much as their arithmetic. Each kernel is
    the one autograd would run (addmm; relu; the mask's product; threshold_backward; the
    weight gradient as AddmmBackward forms it, or as ``_WideLinear`` does for a widening
    layer), so training is the same to the last bit (a test checks). The activations are
    formed in place (relu, then the mask, on the affine map's own output) and so are the
    gradients through them: a third fewer allocations, 8–12% off the step at 1,000 rows.
    Where ReLU's output r is masked in place, its gradient is thresholded on the masked
    h = r·m: h > 0 where r > 0 and m > 0, and where m = 0 the masked gradient is 0 anyway."""

    @staticmethod
    def forward(ctx, x, masks, wide, *params):
        layers = list(zip(params[0::2], params[1::2]))
        h, inputs = x, [x]
        for (weight, bias), mask in zip(layers[:-1], masks):
            h = _affine(h, weight, bias).relu_()
            if mask is not None:
                h = h.mul_(mask)
            inputs.append(h)
        ctx.save_for_backward(*inputs, *params)
        ctx.masks, ctx.wide, ctx.layers = masks, wide, len(layers)
        ctx.bias = [b is not None for _, b in layers]
        return _affine(h, *layers[-1])

    @staticmethod
    def backward(ctx, grad):
        count = ctx.layers
        saved = ctx.saved_tensors
        inputs, params = saved[:count], saved[count:]
        grads: list[torch.Tensor | None] = [None] * len(params)
        g = grad
        for i in range(count - 1, -1, -1):
            weight = params[2 * i]
            if i < count - 1:  # g is the product g·W of the layer above: ours to overwrite
                mask = ctx.masks[i]
                if mask is not None:
                    g = g.mul_(mask)                                # MulBackward0
                g = torch.ops.aten.threshold_backward.grad_input(  # ReluBackward0
                    g, inputs[i + 1], 0, grad_input=g)
            grads[2 * i] = (inputs[i].t() @ g).t().contiguous() if ctx.wide[i] \
                else g.t().mm(inputs[i])                            # AddmmBackward0's mat2
            if ctx.bias[i]:
                grads[2 * i + 1] = g.sum(0)
            if i > 0 or ctx.needs_input_grad[0]:
                g = g.mm(weight)
        return (g if ctx.needs_input_grad[0] else None), None, None, *grads


def _affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear`` as it runs on the CPU: addmm with the bias, else a product."""
    return torch.addmm(bias, x, weight.t()) if bias is not None else x.mm(weight.t())


class MLP(nn.Sequential):
    """The network ``build_network`` makes: an ``nn.Sequential`` (the same layers, state dict
    and eval-mode behaviour) whose CPU pass with gradients is one autograd node
    (``_TrainingMLP``): training's, with lmerpy's dropout masks, and backfitting's, in eval
    mode (dropout off). Any other use runs the layers one by one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan = self._one_node_plan(x)
        if plan is None:
            return super().forward(x)
        linears, dropouts, params, wide = plan
        if self.training:
            shapes = [(x.shape[0], lin.out_features) for lin in linears[:-1]]
            masks = _masks(dropouts, shapes, x.dtype)
        else:  # eval mode: dropout is the identity
            masks = [None] * len(dropouts)
        return _TrainingMLP.apply(x, masks, wide, *params)

    def _one_node_plan(self, x: torch.Tensor):
        """(linears, dropouts, parameters, widening) where the layers are Linear, ReLU,
        [Dropout], ..., Linear, gradients are on, the pass runs on the CPU and, in training,
        every dropout draws its masks from the generator; else None. The layers' pattern is
        found once per set of layers."""
        if not (torch.is_grad_enabled() and x.device.type == "cpu" and x.dim() == 2):
            return None
        layers = tuple(self._modules.values())
        cached = getattr(self, "_pattern", None)
        if cached is None or cached[0] != layers:
            cached = self._pattern = (layers, _mlp_pattern(layers))
        if cached[1] is None:
            return None
        linears, dropouts, wide = cached[1]
        if self.training and any(d is not None and not d.draws_masks(x) for d in dropouts):
            return None
        params = [lin._parameters[name] for lin in linears for name in ("weight", "bias")]
        if any(p is not None and (not p.requires_grad or p.dtype != x.dtype)
               for p in params):
            return None
        return linears, dropouts, params, wide


def _masks(dropouts: list[Dropout | None], shapes: list[tuple[int, int]], dtype
           ) -> list[torch.Tensor | None]:
    """Each dropout layer's mask, drawn in the layers' order as a layer-by-layer pass draws
    them. The bits are those of ``Generator.bytes``, a stream that splits anywhere on whole
    32-bit draws; so where the layers share one generator and one rate and each draws a
    multiple of 4 units (whole 64-bit outputs), one call reads them all and one comparison
    makes the masks: the same masks, without three quarters of the per-call costs."""
    present = [d for d in dropouts if d is not None]
    if not present:
        return [None] * len(dropouts)
    first = present[0]
    counts = [rows * width for (rows, width), d in zip(shapes, dropouts) if d is not None]
    if not (all(c % 4 == 0 for c in counts) and
            all(d.generator is first.generator and d.p == first.p for d in present)):
        return [None if d is None else d.mask(shape, dtype) for d, shape in
                zip(dropouts, shapes)]
    flat = first.mask((sum(counts),), dtype)
    out, start = [], 0
    for d, shape in zip(dropouts, shapes):
        if d is None:
            out.append(None)
            continue
        count = shape[0] * shape[1]
        out.append(flat[start:start + count].view(shape))
        start += count
    return out


def _mlp_pattern(layers: tuple[nn.Module, ...]):
    """(linears, dropout after each hidden layer or None, which layers widen) for Linear,
    ReLU, [Dropout], ..., Linear; None for any other sequence of layers."""
    linears, dropouts, i = [], [], 0
    while i < len(layers):
        if type(layers[i]) is not Linear:
            return None
        linears.append(layers[i])
        i += 1
        if i == len(layers):
            return linears, dropouts, [lin.in_features < lin.out_features for lin in linears]
        if type(layers[i]) is not nn.ReLU or layers[i].inplace:
            return None
        i += 1
        drop = layers[i] if i < len(layers) and isinstance(layers[i], Dropout) else None
        i += drop is not None
        dropouts.append(drop)
    return None  # empty, or ends in an activation


def attach_generator(module: nn.Module, generator: np.random.Generator | None) -> None:
    """Let every lmerpy Dropout in ``module`` draw its masks from ``generator``."""
    for m in module.modules():
        if isinstance(m, Dropout):
            m.generator = generator


# The largest MLP a formula may ask for (400 MB of float32 weights, three times that with
# Adam's moments): a formula may come from an untrusted source, and hidden=(10^9,) would
# otherwise end in the allocator's out-of-memory error.
MAX_PARAMETERS = 100_000_000


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
        ignored = sorted(set(options) - {"module"})
        if ignored:
            raise ModelError(f"nn(..., module={name!r}) uses the module as given: "
                             f"{', '.join(ignored)} would be ignored; set them in the module")
        _check_module(name, module, in_features)
        return module
    hidden = options.get("hidden", DEFAULT_HIDDEN)
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    if not all(isinstance(h, int) and h > 0 for h in hidden):
        raise ModelError(f"hidden must be positive whole numbers, not {hidden}")
    dropout = float(options.get("dropout", DEFAULT_DROPOUT))
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"dropout must be in [0, 1), not {dropout}")
    widths = [in_features, *hidden, 1]
    size = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    if size > MAX_PARAMETERS:
        raise ModelError(f"nn(..., hidden={hidden}) would have {size:,} parameters, more than "
                         f"the {MAX_PARAMETERS:,} lmerpy builds from a formula; for a larger "
                         f"network pass your own module (module=)")
    activation = options.get("activation", "relu")
    if activation not in ACTIVATIONS:
        raise ModelError(f"unknown activation {activation!r} (available: "
                         f"{', '.join(sorted(ACTIVATIONS))})")
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers.append(Linear(width, h))
        if options.get("batchnorm", False):
            layers.append(nn.BatchNorm1d(h))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(Dropout(dropout))
        width = h
    layers.append(Linear(width, 1, bias=bias))
    return MLP(*layers)


def _check_module(name: str, module: nn.Module, in_features: int) -> None:
    """Run a user's module once on two rows of zeros (in eval mode, without gradients): it
    must take float32 rows of the term's ``in_features`` columns and give one number per row,
    else a clear error now rather than a torch traceback (or a silently cut output) later."""
    params = list(module.parameters())
    device = params[0].device if params else torch.device("cpu")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(2, in_features, device=device))
    except Exception as err:  # whatever the module raises, say which module and why
        kinds = sorted({str(p.dtype).replace("torch.", "") for p in params} - {"float32"})
        hint = f"; its parameters are {', '.join(kinds)}: lmerpy feeds float32, use " \
               f"module.float()" if kinds else ""
        raise ModelError(f"modules[{name!r}] failed on a batch of {in_features} input "
                         f"column(s) (after one-hot coding): {str(err).splitlines()[0]}"
                         f"{hint}") from None
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        kind = out.dtype if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(f"modules[{name!r}] must return a float tensor, not {kind}")
    if tuple(out.shape) not in {(2,), (2, 1)}:
        raise ModelError(f"modules[{name!r}] must give one output per row, shape (rows,) or "
                         f"(rows, 1); on 2 rows it gave {tuple(out.shape)}")


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
    return values.reshape(values.shape[0])  # (rows,) or (rows, 1): build_network checks
