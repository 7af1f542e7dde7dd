"""Transformer growth operators (issue 26) on tiny GPTs: exact preservation of every logit,
the msg-depth mask ramp, copies measured, refusals (runs of them: tests/test_lm_growth_runs.py)."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_cfg

from growlab.config import ConfigError
from growlab.growth.depth_copy import DepthCopyStrategy
from growlab.growth.lm_operators import InterpolateBlocks, MaskedBlock, StackBlocks, ZeroBlock
from growlab.growth.nets import GrowableNet, build_network, initial_arch
from growlab.growth.strategies import GrowthStrategy
from growlab.validation import validate

VOCAB = 11
TINY = {"name": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 16, "width": 16, "block_size": 16,
        "dropout": 0.0, "bias": False, "activation": "gelu", "norm": "layer"}  # fmt: skip
X = torch.randint(VOCAB, (4, 16), generator=torch.Generator().manual_seed(3))


def net_of(depth: int, trained: bool) -> GrowableNet:
    torch.manual_seed(0)
    net = build_network(initial_arch(dict(TINY), (16,), VOCAB, depth))
    if trained:  # a few Adam steps, so the blocks are no longer at their initialisation
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(20):
            loss = torch.nn.functional.cross_entropy(net(X).flatten(0, 1), X.roll(-1, 1).flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def logits(net: GrowableNet) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return net(X)


@pytest.mark.parametrize("trained", [False, True])
@pytest.mark.parametrize(("start", "end"), [(1, 2), (2, 4)])
@pytest.mark.parametrize("operator", [ZeroBlock(), MaskedBlock(ramp_steps=5)])
def test_exact_operators_change_no_logit(operator, start, end, trained) -> None:
    net = net_of(start, trained)
    before = logits(net)
    strategy = GrowthStrategy("t", operator=operator)
    for _ in range(end - start):
        strategy.grow(net)
    assert net.depth == end
    assert (logits(net) - before).abs().max() <= 1e-5
    # The new blocks are not no-ops in disguise: a training step changes the function.
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(2):
        net(X).square().mean().backward()
        opt.step()
        opt.zero_grad()
    assert (logits(net) - before).abs().max() > 1e-3


def test_the_msg_mask_ramps_over_its_steps_and_counts_only_training_passes() -> None:
    net = net_of(1, trained=True)
    GrowthStrategy("t", operator=MaskedBlock(ramp_steps=4)).grow(net)
    mask = net.blocks[1].mask
    logits(net)  # evaluation does not advance it
    assert mask.step.item() == 0 and mask.value().item() == 0
    net.train()
    seen = []
    for _ in range(6):
        seen.append(mask.value().item())
        net(X)
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert net.blocks[1].state_dict()["mask.step"].item() == 6  # saved with the weights


@pytest.mark.parametrize(
    ("operator", "order"),
    [(StackBlocks(factor=2), [0, 1, 0, 1]), (InterpolateBlocks(factor=2), [0, 0, 1, 1])],
)
def test_copying_operators_place_copies_of_trained_blocks(operator, order) -> None:
    net = net_of(2, trained=True)
    weights = [b.attn.qkv.weight.clone() for b in net.blocks]
    growth = DepthCopyStrategy("t", operator=operator).grow(net)
    assert net.depth == 4 and growth.index in (1, 2)
    for block, k in zip(net.blocks, order, strict=True):
        assert torch.equal(block.attn.qkv.weight, weights[k])
    ids = {id(p) for p in net.parameters()}
    assert len(ids) == len(list(net.parameters()))  # copies, not shared parameters
    assert operator.measures_error and not operator.preserves_function


LM = ["model=gpt", "data=shakespeare_char", "objective=lm", "logger=none", "model.n_embd=16",
      "model.n_head=2", "model.block_size=16"]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["strategy=gstack", "strategy.stack_factor=1", "depth=4", "train.start_depth=2"],
         "strategy.stack_factor=1"),
        (["strategy=gstack", "depth=3", "train.start_depth=2"], "depth=3 is not"),
        (["strategy=interpolate-depth", "depth=4", "train.start_depth=2",
          "strategy.trainable=new"], "strategy.trainable=new"),
        (["strategy=msg-depth", "strategy.ramp_steps=0"], "strategy.ramp_steps=0"),
    ],
)  # fmt: skip
def test_refusals_name_the_bad_value(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(compose_cfg([*LM, *overrides]))


def test_an_mlp_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs model=gpt"):
        validate(compose_cfg(["logger=none", "strategy=zero-insert", "model=mlp"]))
