"""Growth operators: each builds the block to insert into a network at a position.

An operator declares whether it claims to preserve the network's function; the stage loop
measures the preservation error of those that do (and of seed 001's literal gate, to show it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from growlab.config import ConfigError, ModelKind, Norm, OperatorName
from growlab.models import Block, BlockSpec, GateBlock, GrowableNet


def _width_spec(net: GrowableNet) -> BlockSpec:
    model = net.arch["model"]
    op = "conv" if ModelKind(model["name"]) is ModelKind.cnn else "linear"
    return {"type": "block", "op": op, "in": model["width"], "out": model["width"]}


def random_block(net: GrowableNet, literal_seed_init: bool) -> tuple[BlockSpec, nn.Module]:
    spec = _width_spec(net)
    return spec, Block(spec, net.arch["model"])


def identity_block(net: GrowableNet, literal_seed_init: bool) -> tuple[BlockSpec, nn.Module]:
    """A block computing the identity on the non-negative outputs of a ReLU block.

    op = I (identity matrix, or a Dirac kernel) and zero bias; BatchNorm with zero running mean
    and unit effective variance is the identity in eval mode. LayerNorm normalises each sample,
    which no weight matrix can undo, so with norm=layer the block is residual,
    relu(x + LN(op(x))), with the norm's gain and bias zero: the residual branch starts at 0.
    """
    spec = _width_spec(net)
    norm = Norm(net.arch["model"]["norm"])
    if norm is Norm.layer:
        spec["residual"] = True
    block = Block(spec, net.arch["model"])
    with torch.no_grad():
        if spec["op"] == "linear":
            nn.init.eye_(block.op.weight)
        else:
            nn.init.dirac_(block.op.weight)
        nn.init.zeros_(block.op.bias)
        if norm is Norm.batch:
            bn = block.norm
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        elif norm is Norm.layer:
            nn.init.zeros_(block.norm.weight)
            nn.init.zeros_(block.norm.bias)
    return spec, block


def multiplicative_gate(net: GrowableNet, literal_seed_init: bool) -> tuple[BlockSpec, nn.Module]:
    """x * relu(conv(x)) with the gate == 1 (zero kernel, unit bias) at insertion.

    literal_seed_init reproduces seed 001: an all-ones kernel and no bias, which sums k*k*C
    inputs per output and so does not preserve the function.
    """
    model = net.arch["model"]
    if ModelKind(model["name"]) is not ModelKind.cnn:
        raise ConfigError(f"operator=multiplicative needs model=cnn, got model={model['name']}")
    spec: BlockSpec = {"type": "gate", "channels": model["width"]}
    block = GateBlock(spec, model)
    with torch.no_grad():
        if literal_seed_init:
            nn.init.ones_(block.gate.weight)
            nn.init.zeros_(block.gate.bias)
        else:
            nn.init.zeros_(block.gate.weight)
            nn.init.ones_(block.gate.bias)
    return spec, block


@dataclass(frozen=True)
class GrowthOperator:
    build: Callable[[GrowableNet, bool], tuple[BlockSpec, nn.Module]]
    preserves_function: bool


OPERATORS: dict[OperatorName, GrowthOperator] = {
    OperatorName.random: GrowthOperator(random_block, preserves_function=False),
    OperatorName.identity: GrowthOperator(identity_block, preserves_function=True),
    OperatorName.multiplicative: GrowthOperator(multiplicative_gate, preserves_function=True),
}


def resolve_position(net: GrowableNet, position: int | None) -> int:
    """Null means just before the head; block 0 maps the input to the width, so >= 1."""
    if position is None:
        return net.depth
    if not 1 <= position <= net.depth:
        raise ConfigError(
            f"strategy.position={position} is outside the valid range 1..{net.depth} "
            f"for a network with {net.depth} blocks (null inserts before the head)"
        )
    return position


def grow(
    net: GrowableNet, operator: OperatorName, position: int | None, literal_seed_init: bool
) -> int:
    """Insert the operator's block; returns the index it went to."""
    index = resolve_position(net, position)
    spec, block = OPERATORS[operator].build(net, literal_seed_init)
    device = next(net.parameters()).device
    net.insert(index, spec, block.to(device))
    return index
