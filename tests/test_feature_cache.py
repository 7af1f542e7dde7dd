"""The frozen-feature cache is exact, extends by one block per growth, and notices changes."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_cfg, grow, run_in_process, set_trainable

from growlab.data import load_data
from growlab.engine.feature_cache import FeatureCache, SplitFeatures, cached_inputs
from growlab.engine.replica_axis import Solo
from growlab.engine.run_directory.checkpoint import load_network, stage_path
from growlab.engine.training import evaluate
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


def test_evaluation_from_the_split_cache_equals_the_full_forward() -> None:
    net, x = grown(3)
    y = torch.randint(0, 4, (len(x),))
    splits = SplitFeatures(BIG)
    inputs, start = splits.inputs(net, "val", x)
    assert start == 2  # only the last block and the head run
    (cached,) = evaluate(Solo(net), inputs, y, 256, start)
    (full,) = evaluate(Solo(net), x, y, 256)
    assert cached.acc == full.acc and abs(cached.loss - full.loss) <= 1e-6 * full.loss
    assert SplitFeatures(0).inputs(net, "val", x) == (x, None)  # off: the raw inputs


@pytest.mark.parametrize("strategy", ["freeze-all-but-new", "finetune-all-after"])
def test_every_recorded_stage_metric_equals_a_full_forward_of_its_checkpoint(
    tmp_path, strategy: str
) -> None:
    """Stage metrics come from cached frozen features, also after a fine-tune unfreezes (and
    changes) the prefix: each equals evaluating the stage's saved weights from the input."""
    overrides = [f"strategy={strategy}", "depth=3", "train.epochs_per_stage=2", "logger=none"]
    summary = run_in_process(overrides, tmp_path / "run")
    data = load_data(compose_cfg(overrides).data)
    for record in summary["stages"]:
        net = load_network(stage_path(tmp_path / "run", record["stage"]))
        for split in ("test", "val"):
            x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
            (full,) = evaluate(Solo(net), x, y, 1024)
            assert record[f"{split}_acc"] == pytest.approx(full.acc, abs=1e-9)
            assert record[f"{split}_loss"] == pytest.approx(full.loss, rel=1e-6)
