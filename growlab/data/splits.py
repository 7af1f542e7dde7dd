"""Train/validation/test splits as in-memory tensors, normalised with training statistics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class DataSplits:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device) -> DataSplits:
        moved = {k: v.to(device) for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        return DataSplits(name=self.name, num_classes=self.num_classes, **moved)


def unit_scaled(x: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1], in one pass."""
    return np.divide(x, np.float32(255.0), dtype=np.float32)


def channel_std(
    x: np.ndarray, mean: np.ndarray, axes: tuple[int, ...], rows: int = 2048
) -> np.ndarray:
    """np.std(x, axes, keepdims=True, dtype=float64) given its float64 mean, in chunks of
    rows: the same figure without a float64 copy of the whole array (a quarter of the time)."""
    total = np.zeros_like(mean)
    for i in range(0, len(x), rows):
        part = x[i : i + rows].astype(np.float64)
        part -= mean
        np.square(part, out=part)
        total += part.sum(axis=axes, keepdims=True)
    return np.sqrt(total / (x.size // mean.size))


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out) with `fraction` of each class held out, fixed by `seed`; for
    float (regression) targets, which have no classes, `fraction` of all examples at random."""
    if fraction <= 0:
        return np.arange(len(y)), np.arange(0)
    rng = np.random.default_rng(seed)
    if np.issubdtype(y.dtype, np.floating):
        held_out = np.sort(rng.permutation(len(y))[: int(round(fraction * len(y)))])
        return np.setdiff1d(np.arange(len(y)), held_out, assume_unique=True), held_out
    held: list[np.ndarray] = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        held.append(rng.permutation(members)[: int(round(fraction * len(members)))])
    held_out = np.sort(np.concatenate(held))
    kept = np.setdiff1d(np.arange(len(y)), held_out, assume_unique=True)
    return kept, held_out


def shuffled(splits: DataSplits, seed: int) -> DataSplits:
    """`data.shuffle_labels`: the training and validation labels permuted together (seeded),
    the examples and the test labels as they were. Each class keeps its count; no training or
    validation example keeps a reason for its label, so nothing learnt can show on test.
    Float (regression) targets are permuted by example, each row whole."""
    labels = torch.cat([splits.y_train, splits.y_val])
    order = torch.from_numpy(np.random.RandomState(seed).permutation(len(labels)))
    labels = labels[order]
    n = len(splits.y_train)
    return dataclasses.replace(splits, y_train=labels[:n], y_val=labels[n:])


def finish(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    val_fraction: float,
    split_seed: int,
    train_fraction: float = 1.0,
) -> DataSplits:
    kept, held = stratified_split(y_train, val_fraction, split_seed)
    if train_fraction < 1:
        # A stratified part of the training split only: validation and test stay whole.
        part, _ = stratified_split(y_train[kept], 1 - train_fraction, split_seed + 1)
        kept = kept[part]
    x_fit = x_train[kept]
    # Per-channel statistics of the training part only, so val/test stay unseen.
    axes = tuple(i for i in range(x_fit.ndim) if i != 1) if x_fit.ndim > 2 else (0,)
    mean64 = x_fit.mean(axis=axes, keepdims=True, dtype=np.float64)
    mean = mean64.astype(np.float32)
    std = (channel_std(x_fit, mean64, axes) + 1e-8).astype(np.float32)

    def norm(a: np.ndarray, own: bool = False) -> torch.Tensor:
        """(a - mean) / std in float32; in place when `a` is a float32 copy of ours (fresh
        memory costs more than the arithmetic here)."""
        out = a if own and a.dtype == np.float32 else np.empty(a.shape, np.float32)
        np.subtract(a, mean, out=out, dtype=np.float32)
        return torch.from_numpy(np.divide(out, std, out=out))

    regression = np.issubdtype(y_train.dtype, np.floating)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, dtype=np.float32 if regression else np.int64))

    # Float targets (N, outputs): num_classes is the number of outputs the network predicts.
    outputs = y_train.shape[1] if regression else int(max(y_train.max(), y_test.max()) + 1)

    return DataSplits(
        name=name,
        x_train=norm(x_fit, own=True),
        y_train=labels(y_train[kept]),
        x_val=norm(x_train[held], own=True),
        y_val=labels(y_train[held]),
        x_test=norm(x_test),
        y_test=labels(y_test),
        num_classes=outputs,
    )
