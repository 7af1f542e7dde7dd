"""Per-block activation norms and gradient norms on a fixed probe batch (seed 003's question:
does the signal vanish or explode with depth?)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from growlab.growth.nets import GrowableNet


def block_norms(
    net: GrowableNet,
    x: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
) -> dict[str, list[float]]:
    """Mean per-sample L2 norm of each block's output, and of the loss gradient with respect
    to it, in eval mode. Parameter .grad fields are left untouched."""
    was_training = net.training
    net.eval()
    outputs: list[torch.Tensor] = []

    def keep(_module: torch.nn.Module, _inputs: object, out: torch.Tensor) -> torch.Tensor:
        # A frozen block's output on inputs without gradient (token ids cannot have one)
        # becomes a leaf that does, so the gradient with respect to it is still measured.
        if not out.requires_grad:
            out = out.detach().requires_grad_(True)
        outputs.append(out)
        return out

    hooks = [b.register_forward_hook(keep) for b in net.blocks]
    try:
        with torch.enable_grad():
            inputs = x.detach().clone()
            if inputs.is_floating_point():
                inputs.requires_grad_(True)
            loss = loss_fn(net(inputs))
            grads = torch.autograd.grad(loss, outputs, allow_unused=True)
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)

    def per_sample(t: torch.Tensor | None) -> float:
        if t is None:
            return 0.0
        return t.detach().flatten(1).norm(dim=1).mean().item()

    return {
        "activation_norms": [per_sample(o) for o in outputs],
        "activation_grad_norms": [per_sample(g) for g in grads],
    }
