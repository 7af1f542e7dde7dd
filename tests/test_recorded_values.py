"""Every figure growlab records, checked against its definition on cases whose answer is known:
`improved`, training FLOPs with a frozen prefix, `best_test_acc`, preservation through the stage
loop, split hygiene for every built-in data set, and the objective's boundary."""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
from collections import Counter
from dataclasses import astuple
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FAST, compose_cfg, read_summary, run_in_process

from growlab.data import load_arrays, load_data
from growlab.engine.replica_axis import Solo
from growlab.engine.run_directory import state
from growlab.engine.run_directory.folder import fingerprint, result_config
from growlab.engine.run_directory.records import read_metrics, write_summary
from growlab.engine.run_directory.state import stage_line
from growlab.engine.training import evaluate, train_epoch
from growlab.growth import objectives
from growlab.growth.nets import build_network, initial_arch
from growlab.growth.objectives import Classification


def test_improved_compares_validation_losses_and_never_test_losses(tmp_path, monkeypatch) -> None:
    # Stage 2 lowers the validation loss while the test loss rises; stage 3 lowers the test
    # loss and only equals the validation loss, which is no improvement.
    val_losses, test_losses = iter([1.0, 0.5, 0.5]), iter([1.0, 1.2, 0.3])

    def scripted(self: Classification, trainer: object) -> dict[str, float]:
        return {
            "test_acc": 0.5,
            "test_loss": next(test_losses),
            "val_acc": 0.5,
            "val_loss": next(val_losses),
        }

    monkeypatch.setattr(Classification, "stage_metrics", scripted)
    summary = run_in_process([*FAST, "train.epochs_per_stage=1"], tmp_path / "run")
    assert [s["improved"] for s in summary["stages"]] == [None, True, False]


def mlp_forward_flops(width: int, depth: int, inputs: int = 64, classes: int = 10) -> int:
    """Multiply-adds x 2 of the digits MLP: inputs->width, (depth-1) x width->width, head."""
    return 2 * (inputs * width + (depth - 1) * width * width + width * classes)


def test_training_flops_count_backward_only_from_the_first_trainable_block(tmp_path) -> None:
    width, epochs = 16, 2
    summary = run_in_process(
        [*FAST, "strategy=freeze-all-but-new", f"model.width={width}"], tmp_path / "run"
    )
    n_train = len(load_data(compose_cfg(FAST).data).x_train)
    cumulative = 0
    for record in summary["stages"]:
        depth = record["depth"]
        total = mlp_forward_flops(width, depth)
        assert record["flops_per_sample"] == total
        # Stage k of freeze-all-but-new trains the newest block and the head: the blocks
        # before it are frozen, so the backward pass (2 x forward) starts at the new block.
        frozen = mlp_forward_flops(width, depth - 1) - 2 * width * 10 if depth > 1 else 0
        cumulative += epochs * n_train * (total + 2 * (total - frozen))
        assert record["cum_train_flops"] == cumulative
    assert summary["train_flops"] == cumulative


def test_best_test_acc_is_the_highest_stage_accuracy_and_test_acc_the_last(tmp_path) -> None:
    summary = run_in_process([*FAST, "model.width=16"], tmp_path / "run")
    accs = [s["test_acc"] for s in summary["stages"]]
    assert len(set(accs)) > 1  # otherwise max and min could not be told apart
    assert summary["best_test_acc"] == max(accs)
    assert summary["test_acc"] == accs[-1]


# Preservation through the stage loop: growth must leave the network's outputs unchanged in
# eval mode. With identity weights, ReLU on non-negative inputs, BatchNorm at mean 0 / variance
# 1 - eps and a LayerNorm residual branch starting at 0, every operation is exact in floating
# point, so the recorded error is exactly 0.
PRESERVING = [
    (strategy, model, norm, position)
    for strategy, models in (("identity-insert", ("mlp", "cnn")), ("conv-multiplicative", ("cnn",)))
    for model in models
    for norm in ("none", "batch", "layer")
    for position in (1, 2)
]


@pytest.mark.parametrize(("strategy", "model", "norm", "position"), PRESERVING)
def test_preserving_growth_is_exact_through_the_stage_loop(
    tmp_path: Path, strategy: str, model: str, norm: str, position: int
) -> None:
    summary = run_in_process(
        [
            "debug=fast",
            f"strategy={strategy}",
            f"model={model}",
            f"model.norm={norm}",
            "model.width=8",
            "train.start_depth=2",
            "train.epochs_per_stage=1",
            f"strategy.position={position}",
        ],
        tmp_path / "run",
    )
    grown = [s for s in summary["stages"] if s["phase"] == "grow"]
    assert grown and all(s["inserted_at"] == position for s in grown)
    assert [s["preservation_error"] for s in grown] == [0.0] * len(grown)
    first = summary["stages"][0]  # trained, nothing inserted: the growth fields say so
    assert first["phase"] == "train"
    assert (first["inserted_at"], first["preservation_error"], first["shock"]) == (None,) * 3
    # The shock agrees: the validation loss right after growth is the one right before it.
    assert all(s["shock"]["loss_after"] == s["shock"]["loss_before"] for s in grown)


def row_hashes(x: torch.Tensor) -> list[str]:
    flat = x.reshape(len(x), -1).numpy()
    return [hashlib.sha1(row.tobytes()).hexdigest() for row in flat]


SPLIT_DATA = [
    ("digits", 1797, None),
    ("blobs", None, None),
    ("mnist1d", None, None),
    ("fashion_mnist", 60000, 10000),
]


@pytest.mark.parametrize(("name", "train_and_val", "test"), SPLIT_DATA)
def test_train_validation_and_test_rows_are_disjoint_and_add_up(
    name: str, train_and_val: int | None, test: int | None
) -> None:
    cfg = compose_cfg([f"data={name}"]).data
    raw_train, _, raw_test, _ = load_arrays(cfg)
    splits = load_data(cfg)
    if train_and_val is None:  # digits' own train/test split is checked as a whole below
        train_and_val = len(raw_train)
    if name == "digits":
        assert len(raw_train) + len(raw_test) == train_and_val
        train_and_val = len(raw_train)
    assert len(splits.x_train) + len(splits.x_val) == len(raw_train) == train_and_val
    assert len(splits.x_test) == len(raw_test) == (test or len(raw_test))
    assert len(splits.x_val) == pytest.approx(cfg.val_fraction * len(raw_train), abs=10)
    hashes = {s: row_hashes(getattr(splits, f"x_{s}")) for s in ("train", "val", "test")}
    # Rows that occur more than once in the source may legitimately land in two splits.
    counts = Counter(h for rows in hashes.values() for h in rows)
    duplicated = {h for h, n in counts.items() if n > 1}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = set(hashes[a]) & set(hashes[b])
        assert shared <= duplicated
        assert len(shared) <= 0.002 * len(hashes[b]), (a, b, len(shared))
    y = torch.cat([splits.y_train, splits.y_val, splits.y_test]).numpy()
    assert np.array_equal(np.unique(y), np.arange(splits.num_classes))


def test_the_autoencoders_classifier_never_changes_the_grown_network(tmp_path, monkeypatch) -> None:
    seen: list[bool] = []
    fit = objectives.Reconstruction.stage_metrics

    def checked(self: objectives.Reconstruction, trainer: object) -> dict:
        net = trainer.net  # type: ignore[attr-defined]
        before = {k: v.clone() for k, v in net.state_dict().items()}
        grads = [p.requires_grad for p in net.parameters()]
        result = fit(self, trainer)
        after = net.state_dict()
        seen.append(all(torch.equal(before[k], after[k]) for k in before))
        assert [p.requires_grad for p in net.parameters()] == grads
        return result

    monkeypatch.setattr(objectives.Reconstruction, "stage_metrics", checked)
    summary = run_in_process(
        [*FAST, "strategy=greedy-autoencoder", "train.epochs_per_stage=1"], tmp_path / "run"
    )
    assert summary["status"] == "completed"
    assert seen and all(seen)


def test_every_summary_field_is_what_the_output_contract_defines(tmp_path, monkeypatch) -> None:
    # The process that ran it, SLURM ids included (a packed job shares them).
    slurm = {"SLURM_JOB_ID": "71", "SLURM_ARRAY_JOB_ID": "70", "SLURM_ARRAY_TASK_ID": "1"}
    for name, value in {**slurm, "CUDA_VISIBLE_DEVICES": ""}.items():
        monkeypatch.setenv(name, value)
    overrides = [*FAST, "strategy=identity-insert", "model.width=16", "seed=3"]
    run_in_process(overrides, tmp_path / "run")
    summary = read_summary(tmp_path / "run")
    cfg = compose_cfg(overrides)
    config = result_config(cfg)
    stages = summary["stages"]
    assert [s["stage"] for s in stages] == list(range(cfg.depth - cfg.train.start_depth + 1))
    assert summary["wall_s"] >= sum(s["wall_s"] for s in stages) > 0
    assert [s["widths"] for s in stages] == [[16] * s["depth"] for s in stages]
    assert summary["stack_wall_s"] == summary["wall_s"]  # a solo run is a stack of one
    timing = ("stages", "wall_s", "stack_wall_s")
    assert {k: v for k, v in summary.items() if k not in timing} == {
        "strategy": "identity-insert",
        "operator": "IdentityBlock",  # the class of strategy.operator._target_
        "operator_class": "growlab.growth.operators.IdentityBlock",
        "model": "mlp",
        "data": "digits",
        "seed": 3,
        "depth": cfg.depth,
        "width": 16,
        "start_depth": cfg.train.start_depth,
        "epochs_per_stage": cfg.train.epochs_per_stage,
        "status": "completed",
        "device": "cpu",
        "test_acc": stages[-1]["test_acc"],
        "test_loss": stages[-1]["test_loss"],
        "best_test_acc": max(s["test_acc"] for s in stages),
        "train_flops": stages[-1]["cum_train_flops"],
        "resumes": 0,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job_id": "71",
        "slurm_array_job_id": "70",
        "slurm_array_task_id": "1",
        "cuda_visible_devices": "",  # the GPUs the process was given (none here)
        "tf32": False,  # TF32 matmuls and convolutions: only with train.tf32=true on a GPU
        "stack_size": 1,  # trained alone, not in a stack of seeds
        "config_fingerprint": fingerprint(config),
        # The result config, with the trigger named even at its (unfingerprinted) default.
        "config": {**config, "trigger.name": "fixed"},
    }


def test_epoch_loss_and_accuracy_are_means_over_every_sample() -> None:
    # With a learning rate of 0 the weights never move, so an epoch's training loss and accuracy
    # are the whole set's, whatever the batches (7 per batch here, the last one short); so are
    # a batched evaluation's. Neither leaves the network in another mode than it found it.
    torch.manual_seed(0)
    model = {"name": "mlp", "width": 8, "activation": "relu", "norm": "none", "kernel_size": 3}
    net = build_network(initial_arch(model, (5,), 3, 2))
    x, y = torch.randn(30, 5), torch.randint(0, 3, (30,))
    with torch.no_grad():
        logits = net(x)
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).double().mean().item()
    assert 0 < acc < 1
    still = torch.optim.SGD(net.parameters(), lr=0.0)
    (trained,) = train_epoch(Solo(net), x, y, still, 7, [torch.Generator().manual_seed(0)], 0)
    assert (trained.loss, trained.acc) == pytest.approx((loss, acc), rel=1e-6)
    assert net.training
    net.eval()
    assert astuple(evaluate(Solo(net), x, y, 7)[0]) == pytest.approx((loss, acc), rel=1e-6)
    assert not net.training
    net.train()
    (one,) = evaluate(Solo(net), x[:1], y[:1], 7)
    assert one.loss == pytest.approx(F.cross_entropy(logits[:1], y[:1]).item(), rel=1e-6)
    assert net.training
    (empty,) = evaluate(Solo(net), x[:0], y[:0], 7)  # an empty split
    assert all(math.isnan(v) for v in astuple(empty))
    # Regression targets (the autoencoder's): the loss is the mean squared error, no accuracy.
    zeros = torch.zeros(30, 3)
    (recon,) = train_epoch(Solo(net, F.mse_loss), x, zeros, still, 7, [torch.Generator()], 0)
    assert recon.loss == pytest.approx(F.mse_loss(logits, zeros).item(), rel=1e-6)
    assert math.isnan(recon.acc)


def test_stage_records_agree_with_the_metrics_rows_they_summarise(tmp_path) -> None:
    overrides = [*FAST, "strategy=finetune-all-after", "strategy.finetune_epochs=1"]
    summary = run_in_process(overrides, tmp_path / "run")
    cfg = compose_cfg(overrides)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    stages = summary["stages"]
    assert [r for r in rows if r["event"] == "stage"] == [{"event": "stage", **s} for s in stages]
    growths = cfg.depth - cfg.train.start_depth
    plan = [("train", cfg.train.epochs_per_stage)]
    plan += [("grow", cfg.train.epochs_per_stage)] * growths + [("finetune", 1)]
    assert [(s["phase"], s["epochs"]) for s in stages] == plan
    last_epoch: dict[str, Any] = {}
    for s in stages:
        epochs = [r for r in rows if r["event"] == "epoch" and r["stage"] == s["stage"]]
        assert [r["epoch"] for r in epochs] == list(range(1, s["epochs"] + 1))
        assert all(r["depth"] == s["depth"] for r in epochs)
        factor = cfg.strategy.finetune_lr_factor if s["phase"] == "finetune" else 1.0
        assert all(r["lr"] == pytest.approx(cfg.optimizer.lr * factor) for r in epochs)
        # The stage's figures are its last epoch's: same weights, same numbers.
        end = epochs[-1]
        assert (s["train_loss"], s["train_acc"]) == (end["train_loss"], end["train_acc"])
        assert (s["val_loss"], s["val_acc"]) == (end["val_loss"], end["val_acc"])
        assert s["cum_train_flops"] == end["cum_train_flops"]
        if s["phase"] == "grow":
            # The shock: validation loss and accuracy just before the growth (the last epoch's)
            # and just after it, where the stage starts from.
            (growth,) = [r for r in rows if r["event"] == "growth" and r["stage"] == s["stage"]]
            assert growth["shock"] == s["shock"] and growth["depth"] == s["depth"]
            assert s["shock"]["loss_before"] == last_epoch["val_loss"]
            assert s["shock"]["acc_before"] == last_epoch["val_acc"]
            assert s["start_loss"] == s["shock"]["loss_after"]
        elif s["stage"] > 0:
            assert s["start_loss"] == last_epoch["val_loss"]  # fine-tuning starts where it was
        last_epoch = end


def test_the_stage_log_line_states_the_recorded_figures() -> None:
    previous = {"val_loss": 0.5}
    record = {"stage": 1, "phase": "grow", "depth": 2, "width": 16, "test_acc": 0.91234}
    record |= {"val_loss": 0.4, "preservation_error": 1.5e-6, "improved": True}
    assert stage_line(record, previous, 3) == (
        "stage 2/3 [grow] depth 2 width 16: test_acc 0.9123 val_loss 0.4000 "
        "preservation_error 1.50e-06 (prev val_loss 0.5000: new stage helped)"
    )
    worse = record | {"val_loss": 0.6, "preservation_error": None, "improved": False}
    assert stage_line(worse, previous, 3).endswith(
        "val_loss 0.6000 (prev val_loss 0.5000: new stage did not help)"
    )
    first = record | {"stage": 0, "phase": "train", "depth": 1, "preservation_error": None}
    assert stage_line(first, None, 3) == (
        "stage 1/3 [train] depth 1 width 16: test_acc 0.9123 val_loss 0.4000"
    )


def test_a_summary_before_any_stage_and_without_an_operator_has_no_figures() -> None:
    # From scratch (no operator), as written when a run fails before its first stage ends.
    config = {"strategy.name": "from-scratch", "strategy.operator._target_": None}
    config |= {"model.name": "mlp", "data.name": "digits", "seed": 0, "depth": 3}
    config |= {"train.start_depth": 1, "train.epochs_per_stage": 2}
    written = state.summary(state.Progress(), config, "f", status="failed")
    assert written["operator"] is None and written["status"] == "failed"
    assert {k: written[k] for k in ("width", "test_acc", "best_test_acc", "train_flops")} == {
        "width": None,
        "test_acc": None,
        "best_test_acc": None,
        "train_flops": 0.0,
    }


def test_a_completed_summary_is_never_replaced_by_an_unfinished_one(tmp_path) -> None:
    path = tmp_path / "summary.json"
    assert write_summary(path, {"status": "failed", "test_acc": None})  # nothing there yet
    assert write_summary(path, {"status": "completed", "test_acc": 0.9})
    for status in ("failed", "diverged", "running"):
        assert not write_summary(path, {"status": status, "test_acc": None})
        assert json.loads(path.read_text()) == {"status": "completed", "test_acc": 0.9}
    assert write_summary(path, {"status": "completed", "test_acc": 0.8})  # a rerun's result
    assert json.loads(path.read_text())["test_acc"] == 0.8
    path.write_text("{garbled")  # a damaged summary is no completed result
    assert write_summary(path, {"status": "failed", "test_acc": math.nan})
    assert json.loads(path.read_text()) == {"status": "failed", "test_acc": None}  # NaN: null
