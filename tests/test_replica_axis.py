"""One train_epoch and one evaluate for a solo network and a stack of replicas: the replica axis
(growlab.engine.replica_axis) is their only difference, so a stack's replica gets the epoch its
solo run gets (up to the rounding of batched matmuls)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import compose_cfg

from growlab.engine.optim import build_optimizer
from growlab.engine.replica_axis import Solo, Stack
from growlab.engine.stacking.forward import StackedNet
from growlab.engine.stacking.state import StackedState
from growlab.engine.training import evaluate, train_epoch
from growlab.growth.nets import GrowableNet, build_network, initial_arch
from growlab.growth.objectives import Classification, MeanSquaredError

SEEDS = [0, 1, 2]
MODEL = {"name": "mlp", "width": 16, "activation": "relu", "norm": "batch", "kernel_size": 3}


def _nets() -> list[GrowableNet]:
    nets = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        nets.append(build_network(initial_arch(MODEL, (6,), 4, 3)))
    return nets


def _data(float_targets: bool) -> tuple[torch.Tensor, torch.Tensor]:
    draw = torch.Generator().manual_seed(9)
    x = torch.randn(70, 6, generator=draw)  # 70 = 4 batches of 16 and a short one of 6
    if float_targets:
        return x, torch.randn(70, 4, generator=draw)
    return x, torch.randint(0, 4, (70,), generator=draw)


@pytest.mark.parametrize(
    ("float_targets", "start"), [(False, None), (False, 1), (True, None)], ids=str
)
def test_each_replica_of_a_stack_trains_and_evaluates_as_its_solo_network(
    float_targets: bool, start: int | None
) -> None:
    # start 1: each replica trains on its own features of the block before (per-replica inputs).
    # SGD, not Adam: Adam would turn the rounding noise of the gradient of a bias that batch
    # norm cancels into whole steps.
    cfg = compose_cfg(["logger=none", "optimizer=sgd", "optimizer.lr=0.1"])
    objective = MeanSquaredError() if float_targets else Classification()
    x, y = _data(float_targets)
    stacked_nets = _nets()
    solo_nets = copy.deepcopy(stacked_nets)
    solo = []
    for seed, net in zip(SEEDS, solo_nets, strict=True):
        inputs = x if start is None else net.features(x, upto=start).detach()
        axis = Solo(net, objective.loss)
        optimizer = build_optimizer(cfg, net)
        (trained,) = train_epoch(
            axis, inputs, y, optimizer, 16, [torch.Generator().manual_seed(seed)], start
        )
        solo.append((trained, *evaluate(axis, x, y, 32)))

    per_replica = start is not None
    inputs = x if start is None else torch.stack([n.features(x, upto=start) for n in stacked_nets])
    state = StackedState(
        stacked_nets, [build_optimizer(cfg, n) for n in stacked_nets], cfg.optimizer
    )
    net = StackedNet(stacked_nets[0], state.tensors)
    generators = [torch.Generator().manual_seed(seed) for seed in SEEDS]
    axis = Stack(net, objective.replica_losses, per_replica)
    trained = train_epoch(axis, inputs.detach(), y, state.optimizer, 16, generators, start)
    state.write_back()
    evaluated = evaluate(Stack(net, objective.replica_losses), x, y, 32)

    for (solo_train, solo_eval), train, val in zip(solo, trained, evaluated, strict=True):
        assert train.loss == pytest.approx(solo_train.loss, rel=1e-5)
        assert val.loss == pytest.approx(solo_eval.loss, rel=1e-5)
        if float_targets:
            assert all(math.isnan(a) for a in (train.acc, val.acc, solo_train.acc, solo_eval.acc))
        else:
            assert (train.acc, val.acc) == pytest.approx((solo_train.acc, solo_eval.acc))
    for stacked_net, solo_net in zip(stacked_nets, solo_nets, strict=True):
        solo_state = solo_net.state_dict()
        for name, tensor in stacked_net.state_dict().items():
            torch.testing.assert_close(tensor, solo_state[name], rtol=1e-4, atol=1e-6, msg=name)
    assert stacked_nets[0].training  # evaluate leaves the mode it found


def test_an_epoch_wants_one_generator_per_replica() -> None:
    net = _nets()[0]
    x, y = _data(False)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    two = [torch.Generator(), torch.Generator()]
    with pytest.raises(ValueError, match="2 generators for 1 replicas"):
        train_epoch(Solo(net, F.cross_entropy), x, y, optimizer, 16, two, None)
