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


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out) with `fraction` of each class held out, fixed by `seed`."""
    if fraction <= 0:
        return np.arange(len(y)), np.arange(0)
    rng = np.random.default_rng(seed)
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
    validation example keeps a reason for its label, so nothing learnt can show on test."""
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
    mean = x_fit.mean(axis=axes, keepdims=True, dtype=np.float64).astype(np.float32)
    std = (x_fit.std(axis=axes, keepdims=True, dtype=np.float64) + 1e-8).astype(np.float32)

    def norm(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((a.astype(np.float32, copy=False) - mean) / std)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, dtype=np.int64))

    return DataSplits(
        name=name,
        x_train=norm(x_fit),
        y_train=labels(y_train[kept]),
        x_val=norm(x_train[held]),
        y_val=labels(y_train[held]),
        x_test=norm(x_test),
        y_test=labels(y_test),
        num_classes=int(max(y_train.max(), y_test.max()) + 1),
    )
