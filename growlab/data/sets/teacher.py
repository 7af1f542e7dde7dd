"""A synthetic classification task whose answer is known: labels from a random teacher network.

`data=teacher`: inputs x ~ N(0, I) of `n_features` dimensions; a ReLU MLP of `teacher_depth`
hidden layers of `teacher_width` units (He-normal weights, zero biases, drawn from
`teacher_seed`) maps them to `classes` logits, each standardised over the inputs (the output
layer's bias and scale, so the classes are roughly balanced); each label is the argmax of the
logits plus Gaussian noise of `noise` times their standard deviation (0: the teacher's answer).
A student that grows towards the teacher's depth or width should stop near it.

Classification only: growlab's data splits carry integer labels (a regression target would need
a float-target objective the engine does not have).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from growlab.config import ConfigError, DataConfig
from growlab.data.registry import Arrays, DataKind, register_dataset


@dataclass
class TeacherConfig(DataConfig):
    teacher_depth: int = 2  # hidden layers
    teacher_width: int = 16  # units per hidden layer
    teacher_seed: int = 0  # draws the teacher and the inputs
    n_features: int = 16
    classes: int = 4
    noise: float = 0.0  # logit noise, x the logits' standard deviation
    n_train: int = 4000
    n_test: int = 2000


def check(cfg: TeacherConfig) -> None:
    sizes = {
        "teacher_depth": (cfg.teacher_depth, 0),
        "teacher_width": (cfg.teacher_width, 1),
        "n_features": (cfg.n_features, 1),
        "classes": (cfg.classes, 2),
        "n_train": (cfg.n_train, 10),
        "n_test": (cfg.n_test, 1),
    }
    for key, (value, low) in sizes.items():
        if value < low:
            raise ConfigError(f"data.{key}={value} is not allowed; valid: an integer >= {low}")
    if not cfg.noise >= 0:
        raise ConfigError(f"data.noise={cfg.noise} is not allowed; valid: a number >= 0")


def teacher_logits(cfg: TeacherConfig, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    h, fan_in = x, cfg.n_features
    for _ in range(cfg.teacher_depth):
        w = torch.randn(fan_in, cfg.teacher_width, generator=generator) * (2.0 / fan_in) ** 0.5
        h, fan_in = torch.relu(h @ w), cfg.teacher_width
    logits = h @ (torch.randn(fan_in, cfg.classes, generator=generator) / fan_in**0.5)
    # The output layer's bias and scale: each class's logit standardised over the inputs, so
    # the classes come out roughly balanced.
    return (logits - logits.mean(dim=0)) / (logits.std(dim=0) + 1e-12)


@register_dataset(DataKind.vector, schema=TeacherConfig, require=check)
def teacher(cfg: TeacherConfig) -> Arrays:
    check(cfg)
    generator = torch.Generator().manual_seed(cfg.teacher_seed)
    x = torch.randn(cfg.n_train + cfg.n_test, cfg.n_features, generator=generator)
    logits = teacher_logits(cfg, x, generator)
    if cfg.noise > 0:
        noise = torch.randn(logits.shape, generator=generator)
        logits = logits + cfg.noise * logits.std() * noise
    y = logits.argmax(dim=1).numpy().astype(np.int64)
    x_np = x.numpy().astype(np.float32)
    n = cfg.n_train
    return x_np[:n], y[:n], x_np[n:], y[n:]
