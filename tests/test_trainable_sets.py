"""Which parameters train after a growth, and that frozen parts really stay fixed."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_cfg, grow, set_trainable

from growlab.config import ConfigError
from growlab.data import load_data
from growlab.engine.feature_cache import cached_inputs
from growlab.engine.optim import build_optimizer
from growlab.engine.replica_axis import Solo
from growlab.engine.training import train_epoch
from growlab.growth.nets import build_network, initial_arch
from growlab.growth.operators import RandomBlock
from growlab.growth.strategies import GrowthStrategy
from growlab.strategy_config import TrainableSet


def grown_net(norm: str, trainable: TrainableSet):
    cfg = compose_cfg([f"model.norm={norm}"])
    data = load_data(cfg.data)
    torch.manual_seed(0)
    model = {"name": "mlp", "width": 16, "activation": "relu", "norm": norm, "kernel_size": 3}
    net = build_network(initial_arch(model, data.input_shape, data.num_classes, 2))
    index = grow(net, RandomBlock())
    set_trainable(net, trainable, index)
    return cfg, data, net, index


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def train_one_epoch(cfg, data, net) -> None:
    optimizer = build_optimizer(cfg, net)
    inputs, start = cached_inputs(net, data.x_train, max_bytes=0)
    generators = [torch.Generator().manual_seed(0)]
    train_epoch(Solo(net), inputs, data.y_train, optimizer, 64, generators, start)


def test_freeze_all_but_new_trains_only_the_new_block_and_head() -> None:
    cfg, data, net, index = grown_net("batch", TrainableSet.new_and_head)
    frozen_before = [snapshot(b) for b in net.blocks[:index]]
    new_before, head_before = snapshot(net.blocks[index]), snapshot(net.head)
    train_one_epoch(cfg, data, net)
    for block, before in zip(net.blocks[:index], frozen_before, strict=True):
        after = block.state_dict()
        # Bitwise unchanged, BatchNorm running statistics included.
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert not block.training
        assert not any(p.requires_grad for p in block.parameters())
    assert net.blocks[index].training
    assert not torch.equal(new_before["op.weight"], net.blocks[index].op.weight)
    assert not torch.equal(new_before["norm.running_mean"], net.blocks[index].norm.running_mean)
    assert not torch.equal(head_before["weight"], net.head.weight)


def test_new_only_keeps_the_head_fixed() -> None:
    cfg, data, net, index = grown_net("none", TrainableSet.new)
    head_before = snapshot(net.head)
    new_before = snapshot(net.blocks[index])
    train_one_epoch(cfg, data, net)
    assert torch.equal(head_before["weight"], net.head.weight)
    assert not torch.equal(new_before["op.weight"], net.blocks[index].op.weight)


def test_all_trains_every_block() -> None:
    cfg, data, net, _ = grown_net("none", TrainableSet.all)
    before = [snapshot(b) for b in net.blocks]
    train_one_epoch(cfg, data, net)
    for block, snap in zip(net.blocks, before, strict=True):
        assert not torch.equal(snap["op.weight"], block.op.weight)


def test_train_mode_keeps_frozen_blocks_in_eval() -> None:
    _, _, net, index = grown_net("batch", TrainableSet.new_and_head)
    net.train()
    assert [b.training for b in net.blocks] == [False] * index + [True]
    net.eval()
    assert not any(b.training for b in net.blocks)


def test_a_trainable_backbone_trains_wherever_everything_trains() -> None:
    # model.freeze_backbone=false: the backbone (the stem) trains in the first stage, after a
    # growth with trainable=all and in fine-tuning; not after a growth that trains new blocks.
    torch.manual_seed(0)
    model = {
        "name": "backbone",
        "backbone": "resnet18",
        "input_size": None,
        "weights": None,
        "freeze_backbone": False,
        "width": 8,
        "activation": "relu",
        "norm": "none",
    }
    net = build_network(initial_arch(model, (1, 16, 16), 10, 1))

    def stem_trains() -> set[bool]:
        return {p.requires_grad for p in net.stem.parameters()}

    strategy = GrowthStrategy("test", operator=RandomBlock())
    strategy.set_trainable(net, "train", None)
    assert stem_trains() == {True}
    index = strategy.grow(net).index
    strategy.set_trainable(net, "grow", index)
    assert stem_trains() == {False}
    GrowthStrategy("test", trainable=TrainableSet.all).set_trainable(net, "grow", index)
    assert stem_trains() == {True}
    strategy.set_trainable(net, "finetune", None)
    assert stem_trains() == {True}


def test_an_insert_position_outside_the_network_is_refused_before_the_run() -> None:
    cfg = compose_cfg(["depth=4", "train.start_depth=2"])
    GrowthStrategy("test", operator=RandomBlock(), position=2).check(cfg)  # 1..start_depth
    with pytest.raises(ConfigError, match="strategy.position=3"):
        GrowthStrategy("test", operator=RandomBlock(), position=3).check(cfg)
    # Nothing is inserted from scratch or when the run starts at its final depth.
    GrowthStrategy("test", position=3).check(cfg)
    GrowthStrategy("test", operator=RandomBlock(), position=3).check(
        compose_cfg(["depth=2", "train.start_depth=2"])
    )
