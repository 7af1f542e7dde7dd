"""torchvision backbones as the stem: head replaced, local weights, frozen vs trained."""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import run_in_process

from growlab.config import ConfigError
from growlab.engine.run_directory.checkpoint import load_network, stage_path
from growlab.growth.backbones import BackboneStem, feature_dim

FAST = ["model=backbone", "model.width=16", "depth=2", "train.epochs_per_stage=1", "logger=none"]


def stem_state(run_dir, stage: int) -> dict[str, torch.Tensor]:
    net = load_network(stage_path(run_dir, stage))
    return {k: v for k, v in net.state_dict().items() if k.startswith("stem.")}


def test_local_weights_file_is_loaded_and_frozen_backbone_stays_fixed(tmp_path) -> None:
    torch.manual_seed(123)
    reference = torchvision.models.resnet18(weights=None)
    weights = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), weights)
    summary = run_in_process([*FAST, f"model.weights={weights}"], tmp_path / "run")
    assert summary["status"] == "completed"
    for stage in (0, 1):
        stem = stem_state(tmp_path / "run", stage)
        # Same weights as the file, BatchNorm running statistics included: frozen for real.
        assert torch.equal(stem["stem.body.conv1.weight"], reference.conv1.weight)
        assert torch.equal(stem["stem.body.bn1.running_mean"], reference.bn1.running_mean)
    assert "stem.body.fc.weight" not in stem  # torchvision's classifier is gone
    first = summary["stages"][0]
    assert first["params_trainable"] < first["params_total"] / 100


@pytest.mark.slow
def test_finetune_all_trains_the_backbone(tmp_path) -> None:
    summary = run_in_process(
        [*FAST, "model.freeze_backbone=false", "strategy=identity-insert"], tmp_path / "run"
    )
    assert summary["stages"][1]["preservation_error"] <= 1e-5
    assert summary["stages"][0]["params_trainable"] == summary["stages"][0]["params_total"]
    a, b = stem_state(tmp_path / "run", 0), stem_state(tmp_path / "run", 1)
    assert not torch.equal(a["stem.body.conv1.weight"], b["stem.body.conv1.weight"])


def test_alexnet_features_feed_the_grown_blocks() -> None:
    stem = BackboneStem("alexnet", input_size=64)
    assert feature_dim(stem, (1, 28, 28)) == 256 * 6 * 6
    assert isinstance(stem.body.classifier, torch.nn.Identity)


def test_unknown_backbone_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="model.backbone=lenet.*resnet18"):
        BackboneStem("lenet", input_size=None)
