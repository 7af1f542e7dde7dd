"""Objectives: what the network is trained on and what is measured after each stage.

The stage loop trains `objective.loss(net(x), objective.targets(x, y))` and, after each stage,
records `objective.stage_metrics(trainer)`. An objective that fits an extra model (the
autoencoder's classifier) owns it: `extras()` hands it to the loop to checkpoint, and
`evaluated` names the one whose accuracy is the stage's `test_acc`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from growlab.config import ConfigError
from growlab.growth.nets import GrowableNet, build_network


class Result(Protocol):
    loss: float
    acc: float


class Trainer(Protocol):
    """What the engine offers an objective: its data, and evaluating and fitting a network."""

    net: GrowableNet
    num_classes: int

    def evaluate(self, net: nn.Module, split: str, objective: Objective | None = None) -> Result:
        """Loss and accuracy on a split, for `objective` (None: classifying the labels)."""
        ...

    def current_val(self) -> Result:
        """The run's objective on the validation split for the current weights (remembered
        from the epoch just trained: evaluated once)."""
        ...

    def fit(self, net: GrowableNet, split: str, epochs: int | None) -> None:
        """Train `net`'s trainable part to classify the split's labels (None: the stage's
        number of epochs)."""
        ...


@dataclass
class Objective:
    models: ClassVar[tuple[str, ...] | None] = None
    # An extra model whose accuracy is test_acc (None: the grown network itself).
    evaluated: ClassVar[str | None] = None
    # The stage key a run is judged by when it is not test_acc (higher is better): a lower-is-
    # better loss (summary.json's `primary_metric`; growlab.report reads it).
    primary_metric: ClassVar[str | None] = None
    # Trains on float targets (a data set's regression task) rather than integer labels;
    # growlab.validation refuses a data set whose targets are the other kind.
    float_targets: ClassVar[bool] = False

    def check(self, model: Mapping[str, Any]) -> None:
        if self.models is not None and model["name"] not in self.models:
            raise ConfigError(
                f"objective {type(self).__name__} needs model={'|'.join(self.models)}, "
                f"got model={model['name']}; valid choices: {', '.join(self.models)}"
            )

    def output_dim(self, input_shape: tuple[int, ...], num_classes: int) -> int:
        return num_classes

    def targets(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets)

    def replica_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """`loss` of each replica of a stack: (R, B, ...) outputs and targets -> (R,)."""
        from torch.func import vmap

        return vmap(self.loss)(outputs, targets)

    def stage_metrics(self, trainer: Trainer) -> dict[str, Any]:
        raise NotImplementedError

    def chance_loss(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """The loss of the best constant prediction on a split (nothing learnt); NaN: unknown."""
        return math.nan

    def extras(self) -> dict[str, GrowableNet]:
        """Models this objective fitted at the last stage, to checkpoint beside the network."""
        return {}


@dataclass
class Classification(Objective):
    """Cross-entropy on the labels; accuracy and loss on the validation and test splits."""

    def replica_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if type(self).loss is not Classification.loss:  # a subclass with its own loss
            return super().replica_losses(outputs, targets)
        each = F.cross_entropy(outputs.flatten(0, 1), targets.flatten(), reduction="none")
        return each.view(targets.shape).mean(1)

    def stage_metrics(self, trainer: Trainer) -> dict[str, Any]:
        return own_metrics(trainer, self)

    def chance_loss(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """The cross-entropy of predicting the split's class frequencies: their entropy."""
        if type(self).loss is not Classification.loss or y.dtype.is_floating_point or not len(y):
            return math.nan
        p = torch.bincount(y.flatten()).double() / y.numel()
        return float(-(p[p > 0] * p[p > 0].log()).sum())


@dataclass
class MeanSquaredError(Objective):
    """Trains on the mean squared error between the outputs and float targets, averaged over
    examples and features (a stack's replicas each their own)."""

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets)

    def replica_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if type(self).loss is not MeanSquaredError.loss:  # a subclass with its own loss
            return super().replica_losses(outputs, targets)
        return F.mse_loss(outputs, targets, reduction="none").flatten(1).mean(1)


@dataclass
class Regression(MeanSquaredError):
    """`objective=regression`: mean squared error on a data set's float targets (`data=teacher
    data.task=regression`), averaged over examples and outputs. After each stage it records
    `val_loss`/`test_loss` (that MSE); accuracy has no meaning here and is NaN. Runs are judged
    by their test loss, lower is better: the summary's `primary_metric`."""

    primary_metric: ClassVar[str | None] = "test_loss"
    float_targets: ClassVar[bool] = True

    def stage_metrics(self, trainer: Trainer) -> dict[str, Any]:
        return own_metrics(trainer, self)

    def chance_loss(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """The MSE of predicting the split's mean target: its outputs' mean variance."""
        mse = type(self).loss is MeanSquaredError.loss
        if not mse or not y.dtype.is_floating_point or not len(y):
            return math.nan
        return float((y.double() - y.double().mean(0)).square().mean())


def own_metrics(trainer: Trainer, objective: Objective) -> dict[str, Any]:
    """The grown network's loss and accuracy for `objective` (the run's own) on the test and
    validation splits; the validation figures are the last epoch's, not evaluated again."""
    test = trainer.evaluate(trainer.net, "test", objective)
    val = trainer.current_val()
    return {"test_acc": test.acc, "test_loss": test.loss, "val_acc": val.acc, "val_loss": val.loss}


@dataclass
class Reconstruction(MeanSquaredError):
    """Seed 004's unsupervised greedy pretraining: the network is an autoencoder.

    The grown blocks are the encoder and the head reconstructs the (flattened, normalised)
    input, trained on MSE. After each stage a classifier head is fitted on the frozen encoder's
    features (the encoder itself never changes); its accuracy is the stage's `test_acc`.
    """

    models: ClassVar[tuple[str, ...] | None] = ("mlp",)
    evaluated: ClassVar[str | None] = "classifier"
    # Epochs fitting the classifier head after each stage (None: the stage's planned epochs).
    classifier_epochs: int | None = None

    def __post_init__(self) -> None:
        self.classifier: GrowableNet | None = None

    def output_dim(self, input_shape: tuple[int, ...], num_classes: int) -> int:
        return math.prod(input_shape)

    def targets(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def stage_metrics(self, trainer: Trainer) -> dict[str, Any]:
        recon_train = trainer.evaluate(trainer.net, "train", self)
        recon_test = trainer.evaluate(trainer.net, "test", self)
        self.classifier = self.fit_classifier(trainer)
        train = trainer.evaluate(self.classifier, "train")
        val = trainer.evaluate(self.classifier, "val")
        test = trainer.evaluate(self.classifier, "test")
        return {
            "test_acc": test.acc,
            "test_loss": test.loss,
            "val_acc": val.acc,
            "val_loss": val.loss,
            "classifier_train_acc": train.acc,
            "recon_train_mse": recon_train.loss,
            "recon_test_mse": recon_test.loss,
        }

    def fit_classifier(self, trainer: Trainer) -> GrowableNet:
        """A classification head on a frozen copy of the encoder, trained on the labels."""
        net = trainer.net
        arch = copy.deepcopy(net.arch)
        arch["num_classes"] = trainer.num_classes
        classifier = build_network(arch).to(next(net.parameters()).device)
        classifier.blocks.load_state_dict(net.blocks.state_dict())
        classifier.set_trainable(set(), head=True)
        trainer.fit(classifier, "train", self.classifier_epochs)
        return classifier

    def extras(self) -> dict[str, GrowableNet]:
        return {} if self.classifier is None else {"classifier": self.classifier}
