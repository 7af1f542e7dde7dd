"""A synthetic task whose answer is known: targets from a random teacher network.

`data=teacher`: inputs x ~ N(0, I) of `n_features` dimensions; a ReLU MLP of `teacher_depth`
hidden layers of `teacher_width` units (He-normal weights, zero biases, drawn from
`teacher_seed`) maps them to outputs, each standardised over the inputs (the output layer's
bias and scale). A student that grows towards the teacher's depth or width should stop near it.

- `task=classification` (the default): `classes` outputs; each label is the argmax of them
  plus Gaussian noise of `noise` times their standard deviation (0: the teacher's answer).
- `task=regression`: the targets are the `outputs` outputs themselves (float32, shape
  (N, outputs), each of std 1) plus Gaussian noise of `noise` (x their std of 1), so the best
  mean squared error is `noise`**2. Every teacher unit shows in the targets, which the argmax
  of a classification teacher hides. It needs `objective=regression` (growlab.validation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from growlab.config import ConfigError, DataConfig
from growlab.data.registry import Arrays, DataKind, register_dataset

TASKS = ("classification", "regression")


@dataclass
class TeacherConfig(DataConfig):
    teacher_depth: int = 2  # hidden layers
    teacher_width: int = 16  # units per hidden layer
    teacher_seed: int = 0  # draws the teacher and the inputs
    n_features: int = 16
    classes: int = 4
    noise: float = 0.0  # output noise, x the outputs' standard deviation
    task: str = "classification"  # or "regression" (module docstring)
    outputs: int = 4  # regression targets per example (task=regression only)
    n_train: int = 4000
    n_test: int = 2000


def check(cfg: TeacherConfig) -> None:
    sizes = {
        "teacher_depth": (cfg.teacher_depth, 0),
        "teacher_width": (cfg.teacher_width, 1),
        "n_features": (cfg.n_features, 1),
        "classes": (cfg.classes, 2),
        "outputs": (cfg.outputs, 1),
        "n_train": (cfg.n_train, 10),
        "n_test": (cfg.n_test, 1),
    }
    for key, (value, low) in sizes.items():
        if value < low:
            raise ConfigError(f"data.{key}={value} is not allowed; valid: an integer >= {low}")
    if cfg.task not in TASKS:
        raise ConfigError(f"data.task={cfg.task} is not allowed; valid: {', '.join(TASKS)}")
    if not cfg.noise >= 0:
        raise ConfigError(f"data.noise={cfg.noise} is not allowed; valid: a number >= 0")


def teacher_logits(cfg: TeacherConfig, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The teacher's outputs (`classes` of them, `outputs` for regression), each standardised."""
    h, fan_in = x, cfg.n_features
    for _ in range(cfg.teacher_depth):
        w = torch.randn(fan_in, cfg.teacher_width, generator=generator) * (2.0 / fan_in) ** 0.5
        h, fan_in = torch.relu(h @ w), cfg.teacher_width
    count = cfg.outputs if cfg.task == "regression" else cfg.classes
    logits = h @ (torch.randn(fan_in, count, generator=generator) / fan_in**0.5)
    # The output layer's bias and scale: each output standardised over the inputs, so the
    # classes come out roughly balanced and the regression targets of equal weight.
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
    if cfg.task == "regression":
        y = logits.numpy().astype(np.float32)
    else:
        y = logits.argmax(dim=1).numpy().astype(np.int64)
    x_np = x.numpy().astype(np.float32)
    n = cfg.n_train
    return x_np[:n], y[:n], x_np[n:], y[n:]
