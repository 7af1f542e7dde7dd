"""Reuse the output of frozen leading blocks within a stage.

Frozen blocks have requires_grad=False and run in eval mode (no dropout, BatchNorm on running
statistics), and the stem has no parameters, so their output on the training set is a fixed
function: computing it once per stage and training the rest on it is exact, and makes a greedy
stage cost the same at any depth.
"""

from __future__ import annotations

import torch

from growlab.models import GrowableNet


@torch.no_grad()
def cached_inputs(
    net: GrowableNet, x: torch.Tensor, max_bytes: int, batch_size: int = 4096
) -> tuple[torch.Tensor, int]:
    """(features after the frozen prefix, index of the first block still to run).

    Without a frozen prefix, or when its features would exceed `max_bytes`, this is the stem's
    output (a parameter-free reshape) and block 0.
    """
    prefix = net.frozen_prefix()
    if prefix > 0:
        probe = net.features(x[:1], upto=prefix)
        if probe.numel() * probe.element_size() * x.shape[0] > max_bytes:
            prefix = 0
    if prefix == 0:
        return net.features(x, upto=0), 0
    chunks = [
        net.features(x[i : i + batch_size], upto=prefix) for i in range(0, len(x), batch_size)
    ]
    return torch.cat(chunks), prefix
