"""What only a GPU can show: runs on CUDA, stacks resident on the device, no host
synchronisation inside an epoch. Skipped without CUDA (CI); scripts/gpu_check.sh runs them."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from conftest import CONF, compose_cfg, read_summary, run_in_process
from test_stacked import LM, LM_STRATEGIES, first_epoch_loss, stacked

from growlab.data import load_data
from growlab.engine.optim import build_optimizer
from growlab.engine.replica_axis import Solo, Stack
from growlab.engine.run_base import data_on_device
from growlab.engine.stacking.forward import StackedNet
from growlab.engine.stacking.state import StackedState
from growlab.engine.training import train_epoch
from growlab.growth.nets import build_network, initial_arch
from growlab.growth.objectives import Classification

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
CUDA = ["device=cuda", "logger=none"]


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_stacked_replicas_on_cuda_match_their_solo_runs(model, tmp_path, monkeypatch) -> None:
    # cuDNN's TF32 convolutions (PyTorch's default) round differently for a grouped (stacked)
    # and a plain convolution; compare the stacking itself in full fp32.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    overrides = [*CUDA, f"model={model}", "depth=3", "train.epochs_per_stage=4"]
    seeds = [0, 1, 2]
    summaries = stacked(overrides, seeds, tmp_path / "stack")
    for seed, summary in zip(seeds, summaries, strict=True):
        solo = run_in_process([*overrides, f"seed={seed}"], tmp_path / f"solo{seed}")
        assert summary["status"] == solo["status"] == "completed"
        assert summary["device"] == solo["device"] == "cuda"
        stacked_loss = first_epoch_loss(tmp_path / "stack" / f"seed{seed}")
        assert stacked_loss == pytest.approx(first_epoch_loss(tmp_path / f"solo{seed}"), rel=1e-4)
        assert abs(summary["test_acc"] - solo["test_acc"]) <= 0.01


def strategies() -> list[list[str]]:
    names = sorted(p.stem for p in (CONF / "strategy").glob("*.yaml"))
    return [
        [f"strategy={n}", *(["model=cnn"] if "conv" in n else []),
         *(LM if n in LM_STRATEGIES else [])]
        for n in names
    ]  # fmt: skip


@pytest.mark.parametrize("case", strategies(), ids=lambda c: c[0].split("=")[1])
def test_every_strategy_runs_on_cuda(case, tmp_path: Path) -> None:
    # depth 2: the stacking strategies grow by doubling (debug=fast's depth 3 is refused).
    summary = run_in_process([*CUDA, *case, "debug=fast", "depth=2"], tmp_path)
    assert summary["status"] == "completed" and summary["device"] == "cuda"
    assert read_summary(tmp_path)["test_acc"] == summary["test_acc"]


REGRESSION = ["data=teacher", "data.task=regression", "objective=regression", "data.noise=0.3"]


@pytest.mark.parametrize("strategy", ["gradmax-widen", "identity-insert"])
def test_the_regression_teacher_trains_on_cuda_solo_and_stacked(strategy, tmp_path) -> None:
    overrides = [*CUDA, *REGRESSION, f"strategy={strategy}", "debug=fast", "model.width=8"]
    summaries = stacked(overrides, [0, 1], tmp_path / "stack")
    for seed, summary in zip([0, 1], summaries, strict=True):
        solo = run_in_process([*overrides, f"seed={seed}"], tmp_path / f"solo{seed}")
        assert summary["status"] == solo["status"] == "completed"
        assert summary["device"] == "cuda" and summary["test_acc"] is None
        stacked_loss = first_epoch_loss(tmp_path / "stack" / f"seed{seed}")
        assert stacked_loss == pytest.approx(first_epoch_loss(tmp_path / f"solo{seed}"), rel=1e-4)
        # Float rounding grows over the stages' Adam steps (on the CPU too: 4e-3 here).
        assert summary["test_loss"] == pytest.approx(solo["test_loss"], rel=1e-2)


def _stack(replicas: int, n_train: int):
    cfg = compose_cfg([*CUDA, "model.width=64"])
    data = data_on_device(load_data(cfg.data), torch.device("cuda"))
    arch = initial_arch(dict(cfg.model), data.input_shape, data.num_classes, 2)
    nets = []
    for seed in range(replicas):
        torch.manual_seed(seed)
        net = build_network(arch).cuda()
        net.set_trainable({0, 1}, head=True)
        nets.append(net)
    optimizers = [build_optimizer(cfg, net) for net in nets]
    state = StackedState(nets, optimizers, cfg.optimizer)
    inputs = nets[0].features(data.x_train[:n_train], upto=0)
    return state, StackedNet(nets[0], state.tensors), inputs, data.y_train[:n_train], nets


def test_a_stack_lives_on_the_gpu() -> None:
    state, _, inputs, targets, nets = _stack(4, 512)
    assert all(t.is_cuda for t in state.tensors.values())
    assert all(t.is_cuda for group in state.optimizer.param_groups for t in group["params"])
    assert inputs.is_cuda and targets.is_cuda


def _synchronisations(epoch) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            epoch()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def _epoch(stacked_epoch: bool, n_train: int):
    """One training epoch of 3 seeds (stacked) or of one (solo), on n_train samples."""
    state, net, inputs, targets, nets = _stack(3, n_train)
    generators = [torch.Generator().manual_seed(s) for s in range(3)]
    if stacked_epoch:
        losses = Classification().replica_losses
        return lambda: train_epoch(
            Stack(net, losses), inputs, targets, state.optimizer, 32, generators, 0
        )
    optimizer = build_optimizer(compose_cfg(CUDA), nets[0])
    return lambda: train_epoch(Solo(nets[0]), inputs, targets, optimizer, 32, generators[:1], 0)


@pytest.mark.parametrize("stacked_epoch", [True, False], ids=["stacked", "solo"])
def test_an_epoch_waits_for_the_gpu_a_fixed_number_of_times(stacked_epoch) -> None:
    """Host synchronisations do not grow with the number of batches (none per step)."""
    counts = []
    for n_train in (256, 1024):
        epoch = _epoch(stacked_epoch, n_train)
        epoch()  # warm-up
        counts.append(_synchronisations(epoch))
    assert counts[1] <= counts[0] <= 5, counts  # 8 batches or 32: the same few waits


@pytest.mark.parametrize("stacked_epoch", [True, False], ids=["stacked", "solo"])
def test_an_epoch_replayed_as_a_cuda_graph_trains_as_the_eager_one(stacked_epoch) -> None:
    results = []
    for graphs in (True, False):
        state, net, inputs, targets, nets = _stack(3, 1000)  # 31 full batches and a short one
        generators = [torch.Generator().manual_seed(s) for s in range(3)]
        if stacked_epoch:
            losses = Classification().replica_losses
            epoch = train_epoch(
                Stack(net, losses), inputs, targets, state.optimizer, 32, generators, 0, graphs
            )
            weights = state.params["head.weight"]
        else:
            optimizer = build_optimizer(compose_cfg(CUDA), nets[0])
            epoch = train_epoch(
                Solo(nets[0]), inputs, targets, optimizer, 32, generators[:1], 0, graphs
            )
            weights = nets[0].head.weight
        results.append(([r.loss for r in epoch], [r.acc for r in epoch], weights.detach().clone()))
    (loss_g, acc_g, w_g), (loss_e, acc_e, w_e) = results
    assert loss_g == pytest.approx(loss_e, rel=1e-5)
    assert acc_g == pytest.approx(acc_e, abs=2e-3)
    torch.testing.assert_close(w_g, w_e, rtol=1e-4, atol=1e-5)


def test_a_stack_checkpointing_every_epoch_captures_its_graphs(tmp_path, caplog) -> None:
    """The checkpoint writer's thread works while the next epoch is captured (it must not
    touch the GPU then); 16 replicas give it plenty to write."""
    overrides = [*CUDA, "depth=2", "train.epochs_per_stage=3", "train.checkpoint_every_epochs=1"]
    summaries = stacked(overrides, list(range(16)), tmp_path)
    assert [s["status"] for s in summaries] == ["completed"] * 16
    assert "CUDA graph capture failed" not in caplog.text
