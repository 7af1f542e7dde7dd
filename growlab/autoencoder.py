"""Unsupervised greedy layer-wise pretraining (seed 004) in the stage loop.

The network is an autoencoder: the grown blocks are the encoder and the head reconstructs the
(flattened, normalised) input, trained on MSE. Growth freezes the encoder so far and trains the
new block and the reconstruction head. After each stage a classifier head is fitted on the frozen
encoder's features; its accuracy is the stage's `test_acc`, so the summary contract holds.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F

from growlab import checkpoint as ckpt
from growlab.feature_cache import cached_inputs
from growlab.models import GrowableNet, build_network
from growlab.stage_loop import Run, build_optimizer
from growlab.training import evaluate, train_epoch


class AutoencoderRun(Run):
    loss_fn = staticmethod(F.mse_loss)

    def output_dim(self) -> int:
        return math.prod(self.data.input_shape)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, _ = super().split(name)
        return x, x.flatten(1)

    def labelled(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return super().split(name)

    def stage_metrics(self) -> dict[str, Any]:
        bs = self.cfg.train.eval_batch_size
        recon_train = evaluate(self.net, *self.split("train"), bs, F.mse_loss)
        recon_test = evaluate(self.net, *self.split("test"), bs, F.mse_loss)
        self.classifier = self.fit_classifier()
        train = evaluate(self.classifier, *self.labelled("train"), bs)
        val = evaluate(self.classifier, *self.labelled("val"), bs)
        test = evaluate(self.classifier, *self.labelled("test"), bs)
        return {
            "test_acc": test.acc,
            "test_loss": test.loss,
            "val_acc": val.acc,
            "val_loss": val.loss,
            "classifier_train_acc": train.acc,
            "recon_train_mse": recon_train.loss,
            "recon_test_mse": recon_test.loss,
        }

    def fit_classifier(self) -> GrowableNet:
        """A classification head on the frozen encoder, trained on the labels."""
        arch = copy.deepcopy(self.net.arch)
        arch["num_classes"] = self.data.num_classes
        classifier = build_network(arch).to(self.device)
        classifier.blocks.load_state_dict(self.net.blocks.state_dict())
        classifier.set_trainable(set(), head=True)
        optimizer = build_optimizer(self.cfg, classifier)
        x_train, y_train = self.labelled("train")
        inputs, start = cached_inputs(classifier, x_train, self.cfg.train.cache_max_mb * 2**20)
        epochs = self.cfg.strategy.classifier_epochs
        for _ in range(self.cfg.train.epochs_per_stage if epochs is None else epochs):
            train_epoch(
                classifier,
                inputs,
                y_train,
                optimizer,
                self.cfg.train.batch_size,
                self.generator,
                start,
            )
        return classifier

    def save_stage_checkpoint(self, stage: int) -> None:
        super().save_stage_checkpoint(stage)
        path = ckpt.stage_path(self.run_dir, stage)
        ckpt.save_weights(self.classifier, path.with_name(f"{path.stem}_classifier.pt"))

    def final_model(self) -> GrowableNet:
        """The last stage's classifier (read back from its checkpoint after a resume)."""
        if not hasattr(self, "classifier"):
            stage = self.progress.stages[-1]["stage"]
            path = ckpt.stage_path(self.run_dir, stage)
            self.classifier = ckpt.load_network(path.with_name(f"{path.stem}_classifier.pt"))
        return self.classifier
