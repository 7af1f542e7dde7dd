"""Reuse the output of frozen leading blocks within a stage.

Frozen blocks have requires_grad=False and run in eval mode (no dropout, BatchNorm on running
statistics), as does a frozen backbone stem, and a stem without parameters is a plain reshape;
so their output on the training set is a fixed function: computing it once per stage and
training the rest on it is exact, and makes a greedy stage cost the same at any depth.
"""

from __future__ import annotations

import torch

from growlab.models import GrowableNet


@torch.no_grad()
def cached_inputs(
    net: GrowableNet, x: torch.Tensor, max_bytes: int, batch_size: int = 1024
) -> tuple[torch.Tensor, int | None]:
    """(inputs for `net.forward_from`, index of the first block still to run).

    With a frozen stem, the features after the frozen prefix of blocks (for an MLP without a
    frozen block that is just the flattened input); when the stem trains, or the features
    would exceed `max_bytes`, the raw input and None.
    """
    prefix = net.frozen_prefix()
    if prefix is None:
        return x, None
    if prefix == 0 and not any(True for _ in net.stem.parameters()):
        return net.features(x, upto=0), 0  # a parameter-free reshape: nothing worth caching
    probe = net.features(x[:1], upto=prefix)
    if probe.numel() * probe.element_size() * x.shape[0] > max_bytes:
        return x, None
    starts = range(0, len(x), batch_size)
    return torch.cat([net.features(x[i : i + batch_size], upto=prefix) for i in starts]), prefix
