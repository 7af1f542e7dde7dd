"""Every bad input is refused before any work: one line naming the key, exit 2, no traceback,
no checkpoints or metrics, and the failed summary saying why."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_cfg, read_summary, run_cli

from growlab.config import ConfigError
from growlab.validation import validate

CLI_CASES = [
    (["optimizer.lr=-1"], "optimizer.lr=-1.0"),
    (["strategy=identity-insert", "strategy.position=99"], "strategy.position=99"),
    (["optimizer=sgd", "optimizer.momentum=1.5"], "optimizer.momentum=1.5"),
    (["+optimizer.eps=-1"], "Invalid epsilon value: -1"),
    (["model=cnn", "model.kernel_size=4"], "model.kernel_size=4"),
]


@pytest.mark.parametrize(("overrides", "named"), CLI_CASES)
def test_bad_knob_is_one_line_exit_2_and_nothing_trained(tmp_path, overrides, named) -> None:
    run_dir = tmp_path / "run"
    result = run_cli([*overrides, "logger=none", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and named in errors[0], output
    assert "Traceback" not in output
    assert not (run_dir / "checkpoints").exists()
    assert not (run_dir / "metrics.jsonl").exists()
    summary = read_summary(run_dir)
    assert summary["status"] == "failed" and named in summary["error"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_up_front(tmp_path) -> None:
    result = run_cli(["device=cuda", "logger=none", f"hydra.run.dir={tmp_path}/r"], cwd=tmp_path)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "device=cuda" in output and "auto, cpu" in output
    assert "Traceback" not in output


VALUE_CASES = [
    (["optimizer.lr=0"], "optimizer.lr"),
    (["optimizer.lr=inf"], "optimizer.lr"),
    (["optimizer.weight_decay=-0.1"], "optimizer.weight_decay"),
    (["optimizer=sgd", "optimizer.nesterov=true", "optimizer.momentum=0"], "Nesterov"),
    (["optimizer._target_=torch.optim.Nope"], "torch.optim.Nope"),
    (["strategy=finetune-all-after", "strategy.finetune_lr_factor=0"], "finetune_lr_factor"),
    (["strategy=finetune-all-after", "strategy.finetune_epochs=-1"], "finetune_epochs"),
    (["train.epochs_per_stage=-1"], "train.epochs_per_stage"),
    (["train.batch_size=0"], "train.batch_size"),
    (["train.eval_batch_size=0"], "train.eval_batch_size"),
    (["train.probe_size=0"], "train.probe_size"),
    (["train.num_threads=0"], "train.num_threads"),
    (["train.divergence_factor=1"], "train.divergence_factor"),
    (["train.max_loss=-1"], "train.max_loss"),
    (["train.start_depth=0"], "train.start_depth"),
    (["depth=2", "train.start_depth=3"], "depth=2"),
    (["seed=-1"], "seed=-1"),
    (["model.width=0"], "model.width"),
    (["data.val_fraction=1.0"], "data.val_fraction"),
    (["data=blobs", "data.test_fraction=0"], "data.test_fraction"),
    (["data=blobs", "data.cluster_std=0"], "data.cluster_std"),
    (["data.split_seed=-2"], "data.split_seed"),
    (["data.train_fraction=0"], "data.train_fraction"),
    (["device=tpu"], "device=tpu"),
    (["device=cuda:x"], "device=cuda:x"),
    (["strategy=identity-insert", "strategy.position=0"], "strategy.position=0"),
    (["train.start_depth=2", "strategy.position=3"], "valid: 1..2"),
    (["strategy=conv-multiplicative"], "needs model=cnn, got model=mlp"),
    (["strategy=identity-insert", "model.activation=tanh"], "needs model.activation=relu"),
    (["model=cnn", "data=blobs"], "needs image or 1-D signal data"),
    (["model=backbone", "data=mnist1d"], "needs image data"),
    (["data=cifar10", "data.root=/nonexistent"], "cifar-10-batches-py"),
    (["model=backbone", "model.backbone=resnet999"], "model.backbone=resnet999"),
]


@pytest.mark.parametrize(("overrides", "named"), VALUE_CASES)
def test_validation_names_the_bad_value(overrides, named) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.").replace("+", r"\+")):
        validate(compose_cfg(overrides))


def test_valid_edge_values_pass() -> None:
    validate(compose_cfg(["strategy.position=1", "optimizer.weight_decay=0", "seed=0"]))
    validate(compose_cfg(["train.start_depth=2", "strategy.position=2", "depth=4"]))
    validate(compose_cfg(["model=cnn", "data=mnist1d", "strategy=conv-multiplicative"]))
    # from-scratch never grows, so no insert position applies
    validate(compose_cfg(["strategy=from-scratch", "strategy.position=9"]))
    # the machine checks are the job's; a SLURM sweep validates without them
    validate(compose_cfg(["data=cifar10", "data.root=/nonexistent"]), environment=False)
