"""Token-id data for language modelling: each split is one stream of integer ids, and a sample
is a window of `block_size` ids whose targets are the same window shifted by one.

`TokenSplits` is a `DataSplits` whose x/y tensors are views of the streams: the training
windows start at every position of the training stream (`unfold`, no copy), and an epoch draws
`train.steps_per_epoch` batches of them at random (growlab.engine.training); validation and
test are a fixed set of evenly spaced windows of their own streams, so every evaluation sees
the same characters. No window crosses a split: each split's windows come from its own stream.
The ids are never standardised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from growlab.data.splits import DataSplits

SPLITS = ("train", "val", "test")


def windows(stream: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of the stream (inputs, targets shifted by one), as views without a copy."""
    return stream[:-1].unfold(0, block_size, 1), stream[1:].unfold(0, block_size, 1)


def eval_windows(
    stream: torch.Tensor, block_size: int, count: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` windows at evenly spaced starts (None or 0: every non-overlapping window)."""
    last = len(stream) - block_size - 1  # the last start with a full target window
    if last < 0:
        raise ValueError(f"a split of {len(stream)} ids is shorter than block_size+1")
    if count:
        starts = torch.linspace(0, last, min(count, last + 1)).round().long()
    else:
        starts = torch.arange(0, last + 1, block_size)
    offsets = starts[:, None] + torch.arange(block_size)
    return stream[offsets], stream[offsets + 1]


@dataclass
class TokenSplits(DataSplits):
    """Splits of token ids; `streams` holds each split's whole stream, `vocab` the characters
    (id i is vocab[i]), `manifest` what the split is made of (recorded in the run directory)."""

    streams: dict[str, torch.Tensor] = field(default_factory=dict)
    block_size: int = 0
    eval_count: int | None = None
    vocab: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        name: str,
        streams: dict[str, torch.Tensor],
        vocab: str,
        block_size: int,
        eval_count: int | None,
        manifest: dict[str, Any],
    ) -> TokenSplits:
        x_train, y_train = windows(streams["train"], block_size)
        x_val, y_val = eval_windows(streams["val"], block_size, eval_count)
        x_test, y_test = eval_windows(streams["test"], block_size, eval_count)
        return cls(
            name=name,
            x_train=x_train,
            y_train=y_train,
            x_val=x_val,
            y_val=y_val,
            x_test=x_test,
            y_test=y_test,
            num_classes=len(vocab),
            streams=streams,
            block_size=block_size,
            eval_count=eval_count,
            vocab=vocab,
            manifest=manifest,
        )

    def to(self, device: torch.device) -> TokenSplits:
        """The streams moved, the windows rebuilt as views of them (never materialised)."""
        moved = {k: v.to(device) for k, v in self.streams.items()}
        return TokenSplits.build(
            self.name, moved, self.vocab, self.block_size, self.eval_count, self.manifest
        )

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.vocab)}
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor) -> str:
        return "".join(self.vocab[i] for i in ids.tolist())
