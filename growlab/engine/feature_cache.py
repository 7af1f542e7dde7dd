"""Reuse the output of frozen leading blocks.

Frozen blocks have requires_grad=False and run in eval mode (no dropout, BatchNorm on running
statistics), as does a frozen backbone stem, and a stem without parameters is a plain reshape;
so their output on the training set is a fixed function: computing it once and training the
rest on it is exact, and makes a greedy stage cost the same at any depth. When growth freezes
one more block, the cache is extended through that block alone instead of rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from growlab.growth.nets import GrowableNet, has_parameters

CHUNK = 1024  # rows per forward pass when building the cache (a fixed size keeps it exact)


def _tensors(net: GrowableNet, upto: int) -> list[torch.Tensor]:
    modules = [net.stem, *net.blocks[:upto]]
    return [t for m in modules for t in (*m.parameters(), *m.buffers())]


def _fingerprint(tensors: list[torch.Tensor]) -> tuple:
    """Identity and in-place version of every tensor the first `upto` blocks (and the stem)
    compute with: an optimizer step or a BatchNorm update changes it."""
    return tuple((id(t), t._version) for t in tensors)


@dataclass
class FeatureCache:
    inputs: torch.Tensor | None = None  # the tensor the features were computed from
    prefix: int = 0
    features: torch.Tensor | None = None
    fingerprint: tuple = ()
    # The fingerprinted tensors, held so that no new tensor can take one's id.
    held: tuple[torch.Tensor, ...] = ()

    @torch.no_grad()
    def get(self, net: GrowableNet, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Features of x after the first `prefix` frozen blocks, reusing what is still valid."""
        prefix = net.frozen_prefix()
        assert prefix is not None
        reusable = (
            self.features is not None
            and self.inputs is x
            and self.prefix <= prefix
            and _fingerprint(_tensors(net, self.prefix)) == self.fingerprint
        )
        if reusable:
            assert self.features is not None
            start, h = self.prefix, self.features
        else:
            start, h = 0, None
        if h is None or start < prefix:
            h = _forward(net, x, h, start, prefix)
        self.inputs, self.prefix, self.features = x, prefix, h
        self.held = tuple(_tensors(net, prefix))
        self.fingerprint = _fingerprint(list(self.held))
        return h, prefix


def _forward(
    net: GrowableNet, x: torch.Tensor, h: torch.Tensor | None, start: int, stop: int
) -> torch.Tensor:
    """features(x, upto=stop), in fixed chunks; continues from h = features(x, upto=start)."""
    chunks = []
    for i in range(0, len(x), CHUNK):
        part = net.features(x[i : i + CHUNK], upto=0) if h is None else h[i : i + CHUNK]
        for block in net.blocks[start:stop]:
            part = block(part)
        chunks.append(part)
    return torch.cat(chunks)


@torch.no_grad()
def cached_inputs(
    net: GrowableNet, x: torch.Tensor, max_bytes: int, cache: FeatureCache | None = None
) -> tuple[torch.Tensor, int | None]:
    """(inputs for `net.forward_from`, index of the first block still to run).

    With a frozen stem, the features after the frozen prefix of blocks (for an MLP without a
    frozen block that is just the flattened input); when the stem trains, or the features
    would exceed `max_bytes`, the raw input and None.
    """
    prefix = net.frozen_prefix()
    if prefix is None:
        return x, None
    if prefix == 0 and not has_parameters(net.stem):
        return net.features(x, upto=0), 0  # a parameter-free reshape: nothing worth caching
    probe = net.features(x[:1], upto=prefix)
    if probe.numel() * probe.element_size() * x.shape[0] > max_bytes:
        return x, None
    return (cache or FeatureCache()).get(net, x)


@dataclass
class SplitFeatures:
    """The frozen prefix's features of each evaluation split, so evaluating a greedy stage
    runs only its trainable blocks and head (the same exact reuse as for training)."""

    max_bytes: int  # 0: off
    caches: dict[str, FeatureCache] = field(default_factory=dict)

    def inputs(
        self, net: GrowableNet, split: str, x: torch.Tensor
    ) -> tuple[torch.Tensor, int | None]:
        """(inputs for `net.forward_from`, the first block still to run) for split `split`."""
        if self.max_bytes <= 0:
            return x, None
        return cached_inputs(net, x, self.max_bytes, self.caches.setdefault(split, FeatureCache()))
