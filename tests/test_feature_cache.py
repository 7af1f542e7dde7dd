"""The frozen-feature cache is exact, extends by one block per growth, and notices changes."""

from __future__ import annotations

import torch
from conftest import grow, set_trainable

from growlab.engine.feature_cache import FeatureCache, cached_inputs
from growlab.growth.nets import build_network, initial_arch
from growlab.growth.operators import RandomBlock
from growlab.strategy_config import TrainableSet

BIG = 2**30


def grown(depth: int):
    torch.manual_seed(0)
    model = {"name": "mlp", "width": 32, "activation": "relu", "norm": "batch", "kernel_size": 3}
    net = build_network(initial_arch(model, (20,), 4, 1))
    x = torch.randn(3000, 20)
    for _ in range(depth - 1):
        index = grow(net, RandomBlock())
        set_trainable(net, TrainableSet.new_and_head, index)
    return net, x


def test_incremental_extension_equals_a_fresh_build_bitwise() -> None:
    net, x = grown(2)
    cache = FeatureCache()
    h1, p1 = cached_inputs(net, x, BIG, cache)
    assert p1 == 1
    index = grow(net, RandomBlock())
    set_trainable(net, TrainableSet.new_and_head, index)
    calls = {"n": 0}
    first_block_forward = net.blocks[0].forward

    def counting(inp):
        calls["n"] += len(inp) > 1  # the one-row size probe aside
        return first_block_forward(inp)

    net.blocks[0].forward = counting
    h2, p2 = cached_inputs(net, x, BIG, cache)
    assert p2 == 2 and calls["n"] == 0  # extended through block 1 only
    fresh, _ = cached_inputs(net, x, BIG, FeatureCache())
    assert torch.equal(h2, fresh)
    with torch.no_grad():
        net.eval()
        assert torch.equal(h2, net.features(x, upto=2))


def test_a_changed_frozen_block_invalidates_the_cache() -> None:
    net, x = grown(3)
    cache = FeatureCache()
    h, _ = cached_inputs(net, x, BIG, cache)
    with torch.no_grad():
        net.blocks[0].op.weight.add_(1.0)  # bumps the tensor's version
    again, _ = cached_inputs(net, x, BIG, cache)
    assert not torch.equal(h, again)
    with torch.no_grad():
        assert torch.equal(again, net.features(x, upto=2))


def test_memory_bound_falls_back_to_the_full_forward() -> None:
    net, x = grown(3)
    inputs, start = cached_inputs(net, x, max_bytes=1000)
    assert start is None and inputs is x
