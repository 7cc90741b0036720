"""The nn() networks: lmerpy's Dropout drops the right share of units, stays unbiased, is
reproducible from its generator, and is torch's dropout without one or in eval mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmerpy.engines.networks import Dropout, attach_generator, random_bits16


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.9])
def test_dropout_rate_and_unbiasedness(p):
    layer = Dropout(p)
    attach_generator(layer, np.random.default_rng(0))
    out = layer(torch.ones(2000, 500))
    dropped = float((out == 0).float().mean())
    # 10⁶ units: the share dropped is p within 5 binomial standard errors
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / 1e6)
    assert float(out.mean()) == pytest.approx(1.0, abs=5 * np.sqrt(p / (1 - p) / 1e6))
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - round(p * 65536) / 65536)))


def test_dropout_masks_follow_the_generator_and_carry_the_gradient():
    a, b = Dropout(0.3), Dropout(0.3)
    attach_generator(a, np.random.default_rng(5))
    attach_generator(b, np.random.default_rng(5))
    x = torch.randn(50, 20, requires_grad=True)
    out = a(x)
    assert torch.equal(out, b(x))
    out.sum().backward()
    scale = 1 / (1 - round(0.3 * 65536) / 65536)
    np.testing.assert_allclose(x.grad, torch.where(out.detach() != 0, scale, 0.0), rtol=1e-6)


def test_dropout_without_generator_or_in_eval_mode():
    layer = Dropout(0.5)
    x = torch.ones(100, 100)
    torch.manual_seed(0)
    expected = torch.nn.functional.dropout(x, 0.5, True)
    torch.manual_seed(0)
    assert torch.equal(layer(x), expected)     # torch's dropout when no generator
    attach_generator(layer, np.random.default_rng(0))
    layer.eval()
    assert torch.equal(layer(x), x)


def test_a_formula_cannot_ask_for_an_oversized_network(monkeypatch):
    """hidden=(10^9,) from an untrusted formula is refused before any allocation; the
    count is the MLP's weights and biases, in -> hidden... -> 1."""
    import pandas as pd

    import lmerpy as lp
    from lmerpy.engines import networks

    df = pd.DataFrame({"x1": np.arange(30.0), "y": np.sin(np.arange(30.0)), "g": list("abc") * 10})
    with pytest.raises(lp.ModelError, match="would have 3,000,000,001 parameters, more than "
                                            "the 100,000,000"):
        lp.lmer("y ~ nn(x1, hidden=(1000000000,)) + (1 | g)", df, epochs=1, verbose=False)
    # at the cap, (1 + 1)·h + (h + 1) = 3h + 1 parameters are built, one more is refused
    monkeypatch.setattr(networks, "MAX_PARAMETERS", 3 * 40 + 1)
    m = lp.lmer("y ~ nn(x1, hidden=(40,), dropout=0) + (1 | g)", df, epochs=1, verbose=False)
    assert m.torch_info["networks"][0]["parameters"] == 3 * 40  # the intercept is β's
    with pytest.raises(lp.ModelError, match="would have 124 parameters, more than the 121"):
        lp.lmer("y ~ nn(x1, hidden=(41,)) + (1 | g)", df, epochs=1, verbose=False)


@pytest.mark.parametrize("bitgen", [np.random.PCG64, np.random.MT19937, np.random.Philox])
def test_random_bits_are_the_generators_bytes(bitgen):
    """The fast path reads whole 64-bit outputs; it must give exactly the bits, and leave
    exactly the state, of ``Generator.bytes`` — for every count and whether or not a 32-bit
    half is kept from an earlier draw (an odd number of 32-bit draws before)."""
    for before in (0, 1, 2, 3):
        for count in range(0, 23):
            a, b = np.random.Generator(bitgen(7)), np.random.Generator(bitgen(7))
            for g in (a, b):
                g.integers(0, 2**32, size=before, dtype=np.uint32)
            expected = np.frombuffer(a.bytes(2 * count), dtype=np.uint16)
            np.testing.assert_array_equal(random_bits16(b, count), expected)
            assert a.bytes(24) == b.bytes(24), (before, count)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_grad", [False, True])
def test_linear_gradients_are_nn_linears(bias, x_grad):
    """The widening layer's own backward gives nn.Linear's output and gradients (up to the
    order of float32 sums); a narrowing layer, and any layer without gradients, is
    nn.Linear's own code."""
    from lmerpy.engines.networks import Linear

    torch.manual_seed(0)
    ours = Linear(10, 100, bias=bias)
    torch.manual_seed(0)
    ref = torch.nn.Linear(10, 100, bias=bias)
    assert torch.equal(ours.weight, ref.weight)          # the same initial values
    x = torch.randn(1000, 10, requires_grad=x_grad)
    g = torch.randn(1000, 100)
    outs = []
    for layer in (ours, ref):
        x.grad = None
        out = layer(x)
        out.backward(g)
        outs.append((out.detach(), layer.weight.grad, layer.bias.grad if bias else None,
                     x.grad))
    assert ours(x).grad_fn.name().startswith("_WideLinear")
    for a, b in zip(*outs):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-4)  # sums of 1,000 terms ~ 30
    assert ours.weight.grad.is_contiguous()             # L-BFGS flattens it with view(-1)
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))
    assert Linear(100, 10)(x.detach() @ torch.ones(10, 100)).grad_fn.name() == "AddmmBackward0"


def _pair_of_networks(hidden, dropout, bias, seed=3):
    """Two copies of the same lmerpy MLP, each with its own generator from one seed."""
    from lmerpy.engines.networks import build_network
    from lmerpy.formula import parse

    term = parse(f"y ~ nn(x, hidden={hidden}, dropout={dropout})").nn[0]
    nets = []
    for _ in range(2):
        torch.manual_seed(seed)
        net = build_network(term, 10, None, bias=bias)
        attach_generator(net, np.random.default_rng(seed))
        nets.append(net)
    return nets


@pytest.mark.parametrize("rows", [100, 37])   # 37: masks of odd size, drawn layer by layer
@pytest.mark.parametrize("hidden,dropout,bias", [
    ((100, 50, 25, 12), 0.25, True), ((100, 50, 25, 12), 0.25, False), ((7, 9), 0.0, True),
    ((16,), 0.5, True)])
@pytest.mark.parametrize("x_grad", [False, True])
def test_mlp_training_pass_is_the_layer_by_layer_pass_bit_for_bit(rows, hidden, dropout, bias,
                                                                 x_grad):
    """The written-out training pass gives the layer-by-layer pass's output, every gradient
    and the generator's next state exactly, over steps of Adam (the same kernels on the same
    operands: training does not change by a bit)."""
    from lmerpy.engines.networks import MLP

    fused, layered = _pair_of_networks(hidden, dropout, bias)
    opts = [torch.optim.Adam(n.parameters(), lr=1e-2) for n in (fused, layered)]
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.rand(rows, 10, generator=gen).requires_grad_(x_grad)
        g = torch.randn(rows, 1, generator=gen)
        results = []
        for net, opt, forward in ((fused, opts[0], MLP.forward),
                                  (layered, opts[1], torch.nn.Sequential.forward)):
            x.grad = None
            opt.zero_grad()
            out = forward(net, x)
            out.backward(g)
            results.append([out.detach(), x.grad] + [p.grad for p in net.parameters()])
            opt.step()
            if net is fused:
                assert out.grad_fn.name() == "_TrainingMLPBackward"
        for a, b in zip(*results):
            assert (a is None and b is None) or torch.equal(a, b)
    for a, b in zip(fused.parameters(), layered.parameters()):
        assert torch.equal(a, b)
    gens = [n[2].generator if dropout else None for n in (fused, layered)]
    if dropout:
        assert gens[0].bytes(16) == gens[1].bytes(16)


@pytest.mark.parametrize("hidden,bias", [((100, 50, 25, 12), True), ((16,), False)])
def test_mlp_eval_pass_with_gradients_is_the_layer_by_layer_pass_bit_for_bit(hidden, bias):
    """Backfitting's pass (eval mode: dropout off, gradients on) is one node too, with the
    layer-by-layer pass's output and gradients exactly."""
    from lmerpy.engines.networks import MLP

    fused, layered = _pair_of_networks(hidden, 0.25, bias)
    x = torch.rand(300, 10, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    g = torch.randn(300, 1, generator=torch.Generator().manual_seed(3))
    results = []
    for net, forward in ((fused, MLP.forward), (layered, torch.nn.Sequential.forward)):
        net.eval()
        x.grad = None
        out = forward(net, x)
        out.backward(g)
        results.append([out.detach(), x.grad] + [p.grad for p in net.parameters()])
    assert fused(x).grad_fn.name() == "_TrainingMLPBackward"
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_mlp_runs_layer_by_layer_outside_lmerpys_training_pass():
    fused, _ = _pair_of_networks((8, 4), 0.25, True)
    x = torch.rand(20, 10)
    fused.train()
    with torch.no_grad():
        assert fused(x).grad_fn is None
    attach_generator(fused, None)                            # torch's own dropout
    assert fused(x).grad_fn.name() == "AddmmBackward0"
    attach_generator(fused, np.random.default_rng(0))
    fused[0].weight.requires_grad_(False)                    # a frozen layer
    assert fused(x).grad_fn.name() == "AddmmBackward0"
    fused[0].weight.requires_grad_(True)
    assert fused(x).grad_fn.name() == "_TrainingMLPBackward"
    fused[1] = torch.nn.Tanh()                               # another activation
    assert fused(x).grad_fn.name() == "AddmmBackward0"


@pytest.mark.parametrize("bitgen", [np.random.PCG64, np.random.MT19937])
@pytest.mark.parametrize("before", [0, 1])   # 1: a 32-bit half kept from an earlier draw
@pytest.mark.parametrize("rows", [100, 37])
def test_masks_drawn_at_once_are_the_layers_masks(bitgen, before, rows):
    from lmerpy.engines.networks import _masks

    shapes = [(rows, 100), (rows, 50), (rows, 25), (rows, 12)]
    layers = []
    for _ in range(2):
        gen = np.random.Generator(bitgen(11))
        gen.integers(0, 2**32, size=before, dtype=np.uint32)
        drops = [Dropout(0.25), None, Dropout(0.25), Dropout(0.25)]
        attach_generator(torch.nn.Sequential(*[d for d in drops if d is not None]), gen)
        layers.append((drops, gen))
    (drops, gen), (ref_drops, ref_gen) = layers
    ours = _masks(drops, shapes, torch.float32)
    theirs = [None if d is None else d.mask(s, torch.float32)
              for d, s in zip(ref_drops, shapes)]
    for a, b in zip(ours, theirs):
        assert (a is None and b is None) or torch.equal(a, b)
    assert gen.bytes(16) == ref_gen.bytes(16)
