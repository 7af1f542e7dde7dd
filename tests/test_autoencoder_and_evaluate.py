"""Seed 004's unsupervised greedy pretraining, per-block norms, and reloading a finished run."""

from __future__ import annotations

import pytest
import torch
from conftest import run_in_process

from growlab.cli.evaluate import main as evaluate_main
from growlab.config import ConfigError
from growlab.engine.run_directory.checkpoint import load_network, stage_path
from growlab.engine.run_directory.records import read_metrics
from growlab.validation import validate

AE = [
    "strategy=greedy-autoencoder",
    "data=blobs",
    "depth=3",
    "train.epochs_per_stage=3",
    "strategy.objective.classifier_epochs=30",
    "logger=none",
]


def test_greedy_autoencoder_records_reconstruction_and_classifier_accuracy(tmp_path) -> None:
    summary = run_in_process(AE, tmp_path / "run")
    assert summary["status"] == "completed"
    for stage in summary["stages"]:
        assert 0.0 < stage["recon_test_mse"] < 1.0
        assert stage["test_acc"] > 0.5  # 3 blobs: chance is 1/3
        assert stage["test_acc"] == summary["stages"][stage["stage"]]["test_acc"]
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["event"] == "epoch"]
    # Training is on reconstruction: no accuracy, an MSE loss.
    assert all(r["train_acc"] is None for r in rows)
    # Earlier encoder layers stay frozen while the next one trains.
    first = load_network(stage_path(tmp_path / "run", 0))
    last = load_network(stage_path(tmp_path / "run", 2))
    assert torch.equal(first.blocks[0].op.weight, last.blocks[0].op.weight)
    assert last.head.out_features == 2  # reconstructs the 2-d input


@pytest.mark.parametrize("cache_mb", [0, 2048], ids=["uncached", "cached"])
def test_greedy_autoencoder_classifier_keeps_its_own_copy_of_the_encoder_frozen(
    tmp_path, monkeypatch, cache_mb
) -> None:
    """The classifier stage fits a head on frozen features: the classifier's own copy of the
    encoder starts equal to the grown blocks and stays bitwise unchanged (BatchNorm buffers
    included), without gradients and in eval mode while the head trains: with the frozen
    features cached, and without (train.cache_max_mb=0: the copied blocks run in every step)."""
    from growlab.engine import run_base

    fits: list[int] = []
    original = run_base.RunBase.fit

    def checked_fit(self, net, split, epochs):
        assert net is not self.net  # the grown network is never what the classifier fits
        own = {id(t) for t in [*net.parameters(), *net.buffers()]}
        assert not own & {id(t) for t in [*self.net.parameters(), *self.net.buffers()]}, (
            "the classifier shares tensors with the grown network instead of copying them"
        )
        before = {k: v.clone() for k, v in net.blocks.state_dict().items()}
        encoder = self.net.blocks.state_dict()
        assert before.keys() == encoder.keys()
        assert all(torch.equal(before[k], encoder[k]) for k in before), "not the encoder"
        head = [p.detach().clone() for p in net.head.parameters()]
        training: list[bool] = []
        hooks = [
            block.register_forward_pre_hook(
                lambda m, _: training.append(any(x.training for x in m.modules()))
            )
            for block in net.blocks
        ]
        try:
            original(self, net, split, epochs)
        finally:
            for hook in hooks:
                hook.remove()
        assert training, "the encoder copy never ran: the test checks nothing"
        assert not any(training), "the classifier's encoder ran in training mode"
        assert not any(p.requires_grad for p in net.blocks.parameters())
        assert all(p.requires_grad for p in net.head.parameters())
        after = net.blocks.state_dict()
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        assert not changed, f"the classifier changed its encoder copy: {changed}"
        assert any(
            not torch.equal(a, b) for a, b in zip(head, net.head.parameters(), strict=True)
        ), "the head did not train"
        fits.append(net.depth)

    monkeypatch.setattr(run_base.RunBase, "fit", checked_fit)
    fast = ["train.epochs_per_stage=1", "strategy.objective.classifier_epochs=2"]
    overrides = [*AE, *fast, "model.norm=batch", f"train.cache_max_mb={cache_mb}"]
    summary = run_in_process(overrides, tmp_path)
    assert summary["status"] == "completed"
    assert fits == [1, 2, 3]


def test_greedy_autoencoder_needs_an_mlp() -> None:
    from conftest import compose_cfg

    with pytest.raises(ConfigError, match="valid choices: mlp"):
        validate(compose_cfg(["strategy=greedy-autoencoder", "model=cnn"]))


def test_evaluate_reproduces_recorded_accuracy_both_ways(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    overrides = [
        "strategy=identity-insert",
        "strategy.position=1",
        "model.norm=batch",
        "depth=3",
        "train.epochs_per_stage=2",
        "logger=none",
    ]
    run_in_process(overrides, run_dir)
    # The stage loop runs inside Hydra normally; give the run the config file Hydra would write.
    from conftest import compose_cfg
    from omegaconf import OmegaConf

    (run_dir / ".hydra").mkdir()
    OmegaConf.save(compose_cfg(overrides), run_dir / ".hydra" / "config.yaml")
    assert evaluate_main([str(run_dir)]) == 0
    assert evaluate_main([str(run_dir), "--stage", "1"]) == 0
    assert evaluate_main([str(run_dir), "--whole-model"]) == 0
    out = capsys.readouterr().out
    assert out.count("reproduced") == 3
    # A damaged checkpoint is caught, not reported as reproduced.
    path = stage_path(run_dir, 2)
    ckpt = torch.load(path, weights_only=False)
    ckpt["state_dict"]["head.weight"] = torch.zeros_like(ckpt["state_dict"]["head.weight"])
    torch.save(ckpt, path)
    assert evaluate_main([str(run_dir)]) == 1


def test_stage_records_per_block_activation_and_gradient_norms(tmp_path) -> None:
    summary = run_in_process(
        ["depth=3", "train.epochs_per_stage=1", "logger=none"], tmp_path / "run"
    )
    for stage in summary["stages"]:
        assert len(stage["activation_norms"]) == stage["depth"]
        assert len(stage["activation_grad_norms"]) == stage["depth"]
        assert all(n > 0 for n in stage["activation_norms"] + stage["activation_grad_norms"])
