"""One forward pass of R networks of the same architecture: a stack of replicas.

Activations carry a leading replica dimension, (R, B, ...), and every parameter and buffer is a
stacked tensor (R, *shape), so the R networks train as one. The common layers of an MLP run as
batched matmuls (`baddbmm`), BatchNorm and LayerNorm as one call over all replicas, and
parameter-free per-sample modules (flatten, activations, pooling) on the merged batch, and a
block with `forward_stacked` (growlab.growth.families.StackedBlock) through its children. Anything
else, a convolution or a block from a researcher's own operator, runs through
`torch.func.vmap(functional_call(...))`, which stacks any module but costs more per call: the
matmul path is what makes a stack of small MLPs several times cheaper than its replicas one by
one (see scripts/benchmark.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from growlab.growth.nets import GrowableNet

Tensors = dict[str, torch.Tensor]

# Modules without parameters or buffers that act on each sample alone: they run on (R*B, ...).
PER_SAMPLE = (
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.ReLU,
    nn.GELU,
    nn.Tanh,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
)


class StackedNet:
    """`template`'s forward computed with stacked tensors (name in the template -> (R, ...)).

    The template is one replica's network: it gives the structure and each module's mode
    (train, or eval for frozen parts); its own weights are never used."""

    def __init__(self, template: GrowableNet, tensors: Tensors) -> None:
        self.template, self.tensors = template, tensors
        self.replicas = next(iter(tensors.values())).shape[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: (R, B, ...) inputs of the network."""
        return self.forward_from(x, None)

    def forward_from(self, h: torch.Tensor, start: int | None) -> torch.Tensor:
        """Like GrowableNet.forward_from, on (R, B, ...) activations."""
        if start is None:
            h, start = self.run(self.template.stem, "stem", h), 0
        for i in range(start, len(self.template.blocks)):
            h = self.run(self.template.blocks[i], f"blocks.{i}", h)
        return self.run(self.template.head, "head", h)

    def run(self, module: nn.Module, name: str, h: torch.Tensor) -> torch.Tensor:
        if isinstance(module, PER_SAMPLE) or _inactive_dropout(module):
            return module(h.flatten(0, 1)).unflatten(0, h.shape[:2])
        if isinstance(module, nn.Sequential):
            for child_name, child in module.named_children():
                h = self.run(child, f"{name}.{child_name}", h)
            return h
        # A StackedBlock runs through its children (an attribute look-up: isinstance on a
        # Protocol costs microseconds on every call).
        forward_stacked = getattr(module, "forward_stacked", None)
        if forward_stacked is not None:

            def child(child_name: str, x: torch.Tensor) -> torch.Tensor:
                return self.run(module.get_submodule(child_name), f"{name}.{child_name}", x)

            return forward_stacked(child, h)
        fast = _fast_path(module, h)
        if fast is not None:
            return fast(module, self.local(module, name), h)
        return self.vmapped(module, name, h)

    def local(self, module: nn.Module, name: str) -> Tensors:
        """The stacked tensors of `module`, under its own names."""
        names = [n for n, _ in module.named_parameters()] + [n for n, _ in module.named_buffers()]
        return {n: self.tensors[f"{name}.{n}"] for n in names}

    def vmapped(self, module: nn.Module, name: str, h: torch.Tensor) -> torch.Tensor:
        def one(tensors: Tensors, x: torch.Tensor) -> torch.Tensor:
            return functional_call(module, tensors, (x,))

        return vmap(one)(self.local(module, name), h)


def _inactive_dropout(module: nn.Module) -> bool:
    return isinstance(module, nn.Dropout) and (not module.training or module.p == 0)


FastPath = Callable[[nn.Module, Tensors, torch.Tensor], torch.Tensor]


def _fast_path(module: nn.Module, h: torch.Tensor) -> FastPath | None:
    if isinstance(module, nn.Linear) and h.dim() == 3:
        return _linear
    if (
        isinstance(module, nn.BatchNorm1d)
        and h.dim() == 3
        and module.affine
        and module.track_running_stats
        and module.momentum is not None
    ):
        return _batch_norm
    if (
        isinstance(module, nn.LayerNorm)
        and module.elementwise_affine
        and module.bias is not None
        and len(module.normalized_shape) == 1
    ):
        return _layer_norm
    return None


def _linear(module: nn.Module, t: Tensors, h: torch.Tensor) -> torch.Tensor:
    weight = t["weight"].transpose(1, 2)
    if "bias" not in t:
        return torch.bmm(h, weight)
    return torch.baddbmm(t["bias"].unsqueeze(1), h, weight)


def _batch_norm(module: nn.Module, t: Tensors, h: torch.Tensor) -> torch.Tensor:
    """Each replica's features are channels of one (B, R*F) batch norm: the same statistics
    per replica, and the running statistics update in place in the stacked buffers."""
    assert isinstance(module, nn.BatchNorm1d)
    r, b, f = h.shape
    if module.training:
        t["num_batches_tracked"].add_(1)
    out = F.batch_norm(
        h.transpose(0, 1).reshape(b, r * f),
        t["running_mean"].view(-1),
        t["running_var"].view(-1),
        t["weight"].reshape(-1),
        t["bias"].reshape(-1),
        training=module.training,
        momentum=float(module.momentum or 0.0),
        eps=module.eps,
    )
    return out.view(b, r, f).transpose(0, 1)


def _layer_norm(module: nn.Module, t: Tensors, h: torch.Tensor) -> torch.Tensor:
    assert isinstance(module, nn.LayerNorm)
    shape = (1,) * (h.dim() - 2)
    weight = t["weight"].view(t["weight"].shape[0], *shape, -1)
    bias = t["bias"].view(t["bias"].shape[0], *shape, -1)
    return torch.addcmul(bias, F.layer_norm(h, module.normalized_shape, eps=module.eps), weight)
