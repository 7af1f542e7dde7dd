"""`standard_block` gives a user's operator the network's own block (norm, activation,
dropout), and the example operator built on it keeps BatchNorm and dropout and the function."""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import REPO, grow
from torch import nn

from growlab.growth.nets import Block, build_network, initial_arch
from growlab.growth.operators import RandomBlock, standard_block

sys.path.insert(0, str(REPO / "examples"))
from my_growth.ops import ReZeroBlock, ReZeroResidual  # noqa: E402

MODEL = {"name": "mlp", "width": 16, "activation": "gelu", "norm": "batch", "dropout": 0.25}


def layer_types(module: nn.Module) -> list[type[nn.Module]]:
    return [type(m) for m in module.modules() if not list(m.children())]


@pytest.mark.parametrize(
    ("model", "norm", "op"),
    [
        (MODEL, nn.BatchNorm1d, nn.Linear),
        ({**MODEL, "norm": "layer"}, nn.LayerNorm, nn.Linear),
        ({**MODEL, "name": "cnn", "kernel_size": 3}, nn.BatchNorm2d, nn.Conv2d),
        ({**MODEL, "name": "cnn", "kernel_size": 3, "spatial_dims": 1}, nn.BatchNorm1d, nn.Conv1d),
    ],
)
def test_the_standard_block_is_the_models_own_block(model, norm, op) -> None:
    block = standard_block(model)
    assert layer_types(block) == [op, norm, nn.GELU, nn.Dropout]
    assert isinstance(block, Block) and block.drop.p == 0.25
    assert block.op.weight.shape[:2] == (16, 16)
    # The same layers as the blocks the network starts with.
    shape = (1, 8, 8) if model.get("spatial_dims", 2) == 2 else (1, 24)
    net = build_network(initial_arch(model, shape if model["name"] == "cnn" else (20,), 3, 2))
    assert layer_types(net.blocks[1]) == layer_types(block)
    assert layer_types(RandomBlock().make_block(model)) == layer_types(block)


def test_without_norm_or_dropout_the_block_has_neither() -> None:
    plain = {**MODEL, "norm": "none", "dropout": 0.0, "activation": "relu"}
    assert layer_types(standard_block(plain)) == [nn.Linear, nn.Identity, nn.ReLU, nn.Identity]


def test_the_example_operator_keeps_batch_norm_dropout_and_the_function() -> None:
    torch.manual_seed(0)
    net = build_network(initial_arch(MODEL, (20,), 5, 2))
    x = torch.randn(64, 20)
    net.train()
    with torch.no_grad():
        for _ in range(5):  # non-trivial BatchNorm statistics, as after training
            net(x * 3 + 1)
    net.eval()
    with torch.no_grad():
        before = net(x)
        grow(net, ReZeroResidual())
        net.eval()
        after = net(x)
    new = net.blocks[-1]
    assert isinstance(new, ReZeroBlock)
    assert layer_types(new.branch) == [nn.Linear, nn.BatchNorm1d, nn.GELU, nn.Dropout]
    assert torch.equal(before, after)
    # alpha != 0: the branch, BatchNorm included, now contributes.
    with torch.no_grad():
        new.alpha.fill_(1.0)
        assert not torch.allclose(net(x), before)
