"""Typed schemas for every config group, registered in Hydra's ConfigStore.

The YAML files in `conf/` name these schemas in their defaults list, so a wrong key or a
wrong type fails at composition with OmegaConf's message naming the key and the valid values.
Combinations that no single field can express are checked by `validate`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

from growlab.optim_config import (
    AdamConfig,
    AdamWConfig,
    CosineSchedulerConfig,
    SchedulerConfig,
    SGDConfig,
    StepSchedulerConfig,
    WarmupCosineSchedulerConfig,
)
from growlab.strategy_config import (
    LMDepthStrategyConfig,
    LMWidthStrategyConfig,
    StrategyConfig,
    WidthStrategyConfig,
)


class Activation(str, Enum):
    relu = "relu"
    gelu = "gelu"
    tanh = "tanh"


class Norm(str, Enum):
    none = "none"
    batch = "batch"
    layer = "layer"


@dataclass
class ModelConfig:
    # A registered model family (growlab.growth.families): mlp, cnn, backbone, or a user's.
    name: str = MISSING
    width: int = 64
    activation: Activation = Activation.relu
    norm: Norm = Norm.none
    # After each block's activation, in training only (evaluation is deterministic).
    dropout: float = 0.0


@dataclass
class CNNConfig(ModelConfig):
    kernel_size: int = 3


@dataclass
class BackboneConfig(ModelConfig):
    """A torchvision architecture by name, an optional local state_dict file, whether the
    backbone stays frozen (seed 002's freeze-all) or trains (finetune-all), and the square size
    images are resized to before it (null keeps the data's size)."""

    backbone: str = "resnet18"
    weights: str | None = None
    freeze_backbone: bool = True
    input_size: int | None = None


@dataclass
class DataConfig:
    """The keys every data set takes. `name` is looked up in growlab.data.registry; a data set
    with keys of its own registers a subclass as its schema."""

    name: str = MISSING
    val_fraction: float = 0.1
    split_seed: int = 0
    # Train on this stratified fraction of the training split (fast sweeps); val/test stay whole.
    train_fraction: float = 1.0
    # Permute the training and validation labels together (seeded by split_seed; the examples
    # are the unshuffled run's): they carry no signal, the test labels stay true.
    shuffle_labels: bool = False


@dataclass
class BlobsConfig(DataConfig):
    n_samples: int = 1000
    centers: int = 3
    cluster_std: float = 2.0
    test_fraction: float = 0.5


@dataclass
class TorchvisionDataConfig(DataConfig):
    """Folder holding the data set (null: $GROWLAB_DATA_ROOT, else ~/data), and whether
    torchvision may download it when online."""

    root: str | None = None
    download: bool = False


@dataclass
class Flowers102Config(TorchvisionDataConfig):
    image_size: int = 128


@dataclass
class TrainConfig:
    start_depth: int = 1
    # One number for every growth stage, or a list with one per stage ([10,3,3,3]); read only
    # by growlab.growth.strategies.stage_plan.
    epochs_per_stage: Any = 5
    batch_size: int = 64
    # Optimizer steps per epoch, each on a batch drawn at random with replacement (a data set
    # whose windows are sampled, e.g. a language model's); null: an epoch passes over the data.
    steps_per_epoch: int | None = None
    eval_batch_size: int = 2048
    # Keep Adam moments (and other per-parameter state) for parameters that survive a growth.
    carry_optimizer_state: bool = False
    # Write the resumable `last` checkpoint every this many epochs (0 disables mid-stage saves).
    checkpoint_every_epochs: int = 1
    probe_size: int = 256
    # Reuse frozen blocks' outputs within a stage when that is exact (see growlab/feature_cache.py).
    cache_frozen_features: bool = True
    cache_max_mb: int = 2048
    # On a GPU, replay each epoch's training steps as a CUDA graph
    # (growlab/engine/accelerators/batch_loop.py).
    cuda_graphs: bool = True
    # On a GPU, float32 matmuls and convolutions in TF32 (faster, ~1e-3 relative error); off:
    # full float32 for both (growlab/engine/accelerators/precision.py).
    tf32: bool = False
    # CPU threads; null picks: 1 for small batches (thread start-up costs more than it saves),
    # else SLURM_CPUS_PER_TASK or all cores.
    num_threads: int | None = None
    # Divergence: a training loss above this many times the loss the run started from (or the
    # stage's starting loss, whichever is larger), or above max_loss when set, ends the run.
    divergence_factor: float = 10.0
    max_loss: float | None = None


class LoggerMode(str, Enum):
    auto = "auto"
    online = "online"
    offline = "offline"
    disabled = "disabled"


@dataclass
class LoggerConfig:
    name: str = "none"
    project: str = "growlab"
    entity: str | None = None
    # null: derived from the Hydra sweep directory (or the run directory for a single run).
    group: str | None = None
    mode: LoggerMode = LoggerMode.auto
    tags: list[str] = field(default_factory=list)
    init_timeout_s: float = 10.0


class ReturnMetric(str, Enum):
    """What a run returns to Hydra's sweeper (Optuna tunes on it): the final stage's."""

    val_acc = "val_acc"
    val_loss = "val_loss"
    # Tuning on the test set leaks it into the result; here only for a deliberate comparison.
    test_acc = "test_acc"


class ResumeMode(str, Enum):
    # Continue the run found in the directory (refused when its config differs).
    auto = "auto"
    # Discard what the directory holds and start the run over.
    restart = "restart"


@dataclass
class Config:
    model: Any = MISSING
    data: Any = MISSING
    strategy: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = MISSING
    logger: Any = MISSING
    # When a stage is done (growlab.growth.triggers); None: the fixed schedule.
    trigger: Any = None
    train: TrainConfig = field(default_factory=TrainConfig)
    depth: int = 4
    seed: int = 0
    device: str = "auto"
    resume: ResumeMode = ResumeMode.auto
    # The number a run returns to a sweeper that optimises (e.g. hydra/sweeper=optuna).
    return_metric: ReturnMetric = ReturnMetric.val_acc


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the bad value and the valid choices."""


SCHEMAS: dict[str, type] = {
    "base_config": Config,
    "schema_model_mlp": ModelConfig,
    "schema_model_cnn": CNNConfig,
    "schema_model_backbone": BackboneConfig,
    "schema_data": DataConfig,
    "schema_data_blobs": BlobsConfig,
    "schema_data_torchvision": TorchvisionDataConfig,
    "schema_data_flowers102": Flowers102Config,
    "schema_strategy": StrategyConfig,
    "schema_strategy_width": WidthStrategyConfig,
    "schema_strategy_lm_depth": LMDepthStrategyConfig,
    "schema_strategy_lm_width": LMWidthStrategyConfig,
    "schema_optimizer_adam": AdamConfig,
    "schema_optimizer_adamw": AdamWConfig,
    "schema_optimizer_sgd": SGDConfig,
    "schema_scheduler": SchedulerConfig,
    "schema_scheduler_cosine": CosineSchedulerConfig,
    "schema_scheduler_step": StepSchedulerConfig,
    "schema_scheduler_warmup_cosine": WarmupCosineSchedulerConfig,
    "schema_logger": LoggerConfig,
}


def common_data_keys() -> dict[str, Any]:
    """DataConfig's keys with defaults, untyped: `- /data_common@_here_` in a YAML of a data set
    whose schema Hydra does not know (a user's), so its own keys can sit beside them; the whole
    node is checked against the registered schema before the run (growlab.data.registry)."""
    return {f.name: f.default for f in dataclasses.fields(DataConfig) if f.default != MISSING}
