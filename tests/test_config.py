from __future__ import annotations

import pytest
from conftest import CONF, compose_cfg, run_cli
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ValidationError

from growlab.config import ConfigError
from growlab.growth.strategies import build_strategy
from growlab.validation import validate

STRATEGIES = sorted(p.stem for p in (CONF / "strategy").glob("*.yaml"))
EXPERIMENT_FILES = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def test_default_config_composes_to_the_documented_defaults() -> None:
    cfg = compose_cfg([])
    assert (cfg.model.name, cfg.data.name, cfg.strategy.name) == (
        "mlp",
        "digits",
        "freeze-all-but-new",
    )
    assert cfg.optimizer._target_ == "torch.optim.Adam"
    assert cfg.depth == 4 and cfg.train.start_depth == 1
    validate(cfg)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_composes_builds_and_validates(strategy: str) -> None:
    built = build_strategy(compose_cfg([f"strategy={strategy}"]).strategy)
    models = (built.operator.models if built.operator else None) or ("mlp",)
    # A language model's strategies need its data and objective.
    lm = ["data=shakespeare_char", "objective=lm"] if models[0] == "gpt" else []
    cfg = compose_cfg([f"strategy={strategy}", f"model={models[0]}", *lm])
    assert cfg.strategy.name == built.name == strategy
    validate(cfg)


def test_sgd_optimizer_has_momentum() -> None:
    cfg = compose_cfg(["optimizer=sgd"])
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.momentum == 0.9


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ConfigCompositionException, match="widht"):
        compose_cfg(["model.widht=3"])


def test_wrong_type_is_rejected() -> None:
    # (train.epochs_per_stage takes a number or a list: validation refuses "many" there.)
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(["train.batch_size=many"])
    assert "many" in str(info.value.__cause__)


def test_bad_enum_value_names_the_valid_choices() -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(["model.norm=group"])
    cause = info.value.__cause__
    assert isinstance(cause, ValidationError)
    assert "group" in str(cause) and "batch" in str(cause) and "layer" in str(cause)


def test_unknown_dataset_lists_the_available_ones() -> None:
    with pytest.raises(MissingConfigException) as info:
        compose_cfg(["data=imagenet"])
    message = str(info.value)
    assert "imagenet" in message and "fashion_mnist" in message


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["depth=1", "train.start_depth=2"], "depth=1"),
        (["train.epochs_per_stage=-1"], "epochs_per_stage=-1"),
        (["strategy=conv-multiplicative"], "model=mlp"),
        (["model=cnn", "data=blobs"], "data=blobs"),
        (["strategy=identity-insert", "model.activation=tanh"], "activation=tanh"),
        (["device=tpu"], "tpu"),
    ],
)
def test_impossible_combinations_fail_with_a_named_value(
    overrides: list[str], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        validate(compose_cfg(overrides))


def test_cli_refuses_conv_gate_on_mlp_without_claiming_success(tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(
        ["model=mlp", "strategy=conv-multiplicative", f"hydra.run.dir={run_dir}"], cwd=tmp_path
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "conv-multiplicative" in output and "model=cnn" in output
    assert "Traceback" not in output
    import json

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "model=mlp" in summary["error"]
    assert not (run_dir / "checkpoints").exists()
    assert not (run_dir / "metrics.jsonl").exists()


EXPERIMENTS = {
    "seed000_greedy_mlp": ("freeze-all-but-new", "fashion_mnist", 11),
    "seed001_identity_insert": ("identity-insert", "fashion_mnist", 2),
    "seed001_conv_gate": ("conv-multiplicative", "fashion_mnist", 2),
    "seed002_backbone": ("freeze-all-but-new", "cifar10", 1),
    "seed003_norms": ("from-scratch", "flowers102", 3),
    "seed004_supervised": ("freeze-all-but-new", "blobs", 11),
    "seed004_unsupervised": ("greedy-autoencoder", "blobs", 11),
}


@pytest.mark.parametrize("name", EXPERIMENT_FILES)
def test_experiment_files_override_the_defaults(name: str) -> None:
    cfg = compose_cfg([f"experiment={name}"])
    if name in EXPERIMENTS:  # the seed documents' settings
        strategy, data, depth = EXPERIMENTS[name]
        assert (cfg.strategy.name, cfg.data.name, cfg.depth) == (strategy, data, depth)
    validate(cfg, environment=False)  # CIFAR-10 and Flowers102 are not on this machine


def test_seed004_experiment_matches_the_seed_settings() -> None:
    cfg = compose_cfg(["experiment=seed004_unsupervised"])
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.lr == 0.01
    assert cfg.train.epochs_per_stage == 100 and cfg.model.width == 10
    assert cfg.data.split_seed == 2 and cfg.data.val_fraction == 0.0
