"""Width operators: how the k new units of a block are initialised.

Each returns the new units' numbers (`NewUnits`) for one block; `growlab.growth.widening` puts
them into the network. All three preserve the function at insertion in eval mode with
norm=none|batch, and the stage loop measures the error: Net2Wider because copies share their
original's outgoing weight, the others because the new units' outgoing weights are zero.
LayerNorm (and GroupNorm(1, C) for feature maps) normalises each sample over all units, so new
units change its mean and variance; the error is then measured, not zero (except Net2Wider
when every unit is copied equally often, e.g. a doubling).

`data` is None when a checkpoint's architecture is rebuilt by replaying the growth (the loaded
weights replace whatever the new units get then).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from growlab.growth.nets import GrowableNet
from growlab.growth.operators import OperatorBase
from growlab.growth.widening import GrowthData, Layer, NewUnits, layer


@dataclass
class WidthOperator(OperatorBase):
    """Base of the operators that add units to existing blocks."""

    preserves_function: ClassVar[bool] = True
    models: ClassVar[tuple[str, ...] | None] = ("mlp", "cnn")

    def new_units(self, net: GrowableNet, index: int, k: int, data: GrowthData | None) -> NewUnits:
        raise NotImplementedError


def _zero_fan_out(where: Layer, k: int) -> torch.Tensor:
    shape = where.next.weight.shape
    return torch.zeros(shape[0], k, *shape[2:], dtype=where.next.weight.dtype)


def _default_fan_in(where: Layer, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and biases as PyTorch initialises this layer (kaiming uniform, a=sqrt(5))."""
    weight = torch.empty(k, *where.op.weight.shape[1:], dtype=where.op.weight.dtype)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    bound = 1 / math.sqrt(weight[0].numel())
    return weight, torch.empty(k, dtype=weight.dtype).uniform_(-bound, bound)


@dataclass
class Net2Wider(WidthOperator):
    """Net2Net (Chen et al., 2016): each new unit copies a randomly chosen existing unit (its
    incoming weights, bias and norm), and the outgoing weights of a unit copied c-1 times are
    divided by c among it and its copies. Units are drawn without replacement while they last,
    so copies spread evenly. `noise` > 0 adds Gaussian noise of noise x std(layer weights) to
    the copies' incoming weights to break the symmetry (the function then changes a little)."""

    noise: float = 0.0

    def new_units(self, net: GrowableNet, index: int, k: int, data: GrowthData | None) -> NewUnits:
        where = layer(net, index)
        n = where.width
        source = torch.cat([torch.randperm(n) for _ in range(math.ceil(k / n))])[:k]
        copies = torch.bincount(source, minlength=n) + 1
        weight = where.next.weight.detach().cpu()
        shape = [1, n] + [1] * (weight.dim() - 2)
        old_fan_out = weight / copies.to(weight.dtype).view(shape)
        fan_in = where.op.weight.detach().cpu()[source].clone()
        if self.noise > 0:
            spread = where.op.weight.detach().std().item()
            fan_in += self.noise * spread * torch.randn_like(fan_in)
        return NewUnits(
            fan_in=fan_in,
            bias=where.op.bias.detach().cpu()[source].clone(),
            fan_out=old_fan_out[:, source].clone(),
            source=source,
            old_fan_out=old_fan_out,
        )


@dataclass
class RandomWiden(WidthOperator):
    """New units with PyTorch's default incoming weights and zero outgoing weights."""

    def new_units(self, net: GrowableNet, index: int, k: int, data: GrowthData | None) -> NewUnits:
        where = layer(net, index)
        fan_in, bias = _default_fan_in(where, k)
        return NewUnits(fan_in=fan_in, bias=bias, fan_out=_zero_fan_out(where, k))


@dataclass
class GradMaxWiden(WidthOperator):
    """GradMax (Evci et al., 2022): zero outgoing weights, and incoming weights that maximise
    the norm of the loss gradient on the new outgoing weights.

    With the new units linearised (h_new = W_new x, activation and norm taken as identity, as
    in the paper), that gradient is M W_new^T with M = sum over samples of g x^T (g: the loss
    gradient at the next layer's output, x: the block's input; for convolutions x are the input
    patches and M has one row per next-layer output channel and kernel tap). Its norm for
    unit-norm rows of W_new is largest at M's top right singular vectors: those are the new
    incoming weights, scaled to the mean norm of the block's existing incoming weights, bias 0.
    M is summed over `batches` training batches of train.batch_size. Past M's column count
    (more new units than input dimensions) the remaining rows are random unit vectors.
    """

    batches: int = 1

    def new_units(self, net: GrowableNet, index: int, k: int, data: GrowthData | None) -> NewUnits:
        where = layer(net, index)
        weight = where.op.weight.detach().cpu()
        rows = weight.flatten(1)
        if data is None:  # a replay: the checkpoint's weights are loaded afterwards
            directions = torch.zeros(k, rows.shape[1], dtype=rows.dtype)
        else:
            directions = top_right_singular_vectors(
                gradient_matrix(net, where, data, self.batches), k
            )
        scale = rows.norm(dim=1).mean()
        fan_in = (directions * scale).reshape(k, *weight.shape[1:]).to(weight.dtype)
        return NewUnits(
            fan_in=fan_in, bias=torch.zeros(k, dtype=weight.dtype), fan_out=_zero_fan_out(where, k)
        )


def top_right_singular_vectors(m: torch.Tensor, k: int) -> torch.Tensor:
    """k unit rows: M's right singular vectors by decreasing singular value, then random."""
    m = m.double()
    _, _, vh = torch.linalg.svd(m, full_matrices=True)
    top = vh[:k]
    if k > top.shape[0]:
        extra = torch.randn(k - top.shape[0], m.shape[1], dtype=m.dtype)
        top = torch.cat([top, extra / extra.norm(dim=1, keepdim=True)])
    return top.float()


def _patches(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """(B, C*kh*kw, H', W'): each output position's input patch, laid out as conv weights are."""
    b = x.shape[0]
    cols = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
    h_out = (x.shape[2] + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
    return cols.view(b, cols.shape[1], h_out, -1)


def gradient_matrix(net: GrowableNet, where: Layer, data: GrowthData, batches: int) -> torch.Tensor:
    """M = sum over samples of g x^T for block `where.index` (see GradMaxWiden), on the
    network in eval mode; nothing in the network changes (no parameter gradients either)."""
    captured: dict[str, torch.Tensor] = {}

    def keep_input(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        captured["x"] = inputs[0].detach()

    def leaf_output(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        captured["z"] = output.detach().requires_grad_(True)
        return captured["z"]

    was_training = net.training
    net.eval()
    hooks = [
        where.op.register_forward_pre_hook(keep_input),
        where.next.register_forward_hook(leaf_output),
    ]
    total: torch.Tensor | None = None
    try:
        with torch.enable_grad():
            for x, y in data.batches(batches):
                loss = data.loss(net(x), y)
                (g,) = torch.autograd.grad(loss, captured["z"])
                m = batch_matrix(captured["x"], g, where)
                total = m if total is None else total + m
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    assert total is not None, "no training batch to compute GradMax's matrix on"
    return total.cpu()


def batch_matrix(x: torch.Tensor, g: torch.Tensor, where: Layer) -> torch.Tensor:
    """One batch's M = sum g x^T for block `where.index` (GradMax; the gradient trigger)."""
    if isinstance(where.op, nn.Linear):
        return g.T @ x
    patches = _patches(x, where.op)
    if isinstance(where.next, nn.Linear):  # the CNN head: global average pool, then linear
        return g.T @ patches.mean(dim=(2, 3))
    nxt = where.next
    size = (nxt.out_channels, patches.shape[1], *nxt.kernel_size)
    grad = torch.nn.grad.conv2d_weight(
        patches, size, g, nxt.stride, nxt.padding, nxt.dilation, nxt.groups
    )
    return grad.permute(0, 2, 3, 1).reshape(-1, patches.shape[1])
