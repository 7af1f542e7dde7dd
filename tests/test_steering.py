"""`trigger.steer=true`: the trigger that says where to grow (merit: after which block to
insert; gradient: which block to widen) decides where the next growth happens. A steered grow
goes exactly where it is told; bad combinations are refused before any work; not steering
keeps every fingerprint; a steered run resumes to the same network, rebuilds from its records
(growlab.evaluate) and, stacked, splits where the replicas' places differ and equals its solo
runs."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import FAST, compose_cfg, run_cli, run_in_process
from omegaconf import OmegaConf
from test_stacked import stacked

from growlab.cli.evaluate import main as evaluate_main
from growlab.cli.evaluate import rebuild_from_config
from growlab.config import ConfigError
from growlab.engine import runners as solo_runner
from growlab.engine.run_directory.folder import fingerprint, result_config
from growlab.growth.nets import block_widths, build_network, initial_arch
from growlab.growth.operators import IdentityBlock, RandomBlock
from growlab.growth.strategies import GrowthStrategy
from growlab.growth.trigger_signals import GradientGain, Merit
from growlab.growth.width_operators import RandomWiden
from growlab.growth.width_strategy import WidthGrowthStrategy
from growlab.validation import validate

MODEL = {"name": "mlp", "width": 8, "activation": "relu", "norm": "none", "dropout": 0.0}


def small_net(depth: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(initial_arch(dict(MODEL), (5,), 3, depth))


def test_a_steered_insert_goes_to_the_given_index_and_another_index_is_another_net() -> None:
    x = torch.randn(16, 5)
    outputs = []
    for at in (1, 2):
        net = small_net()
        old = list(net.blocks)
        torch.manual_seed(1)
        growth = GrowthStrategy("t", operator=RandomBlock()).grow(net, None, at)
        assert (growth.index, growth.at, net.depth) == (at, at, 3)
        assert [b for i, b in enumerate(net.blocks) if i != at] == old  # the others kept
        assert net.blocks[at] not in old
        net.eval()
        with torch.no_grad():
            outputs.append(net(x))
    assert not torch.allclose(outputs[0], outputs[1])
    # No position: the strategy's own place (before the head), recorded as such.
    net = small_net()
    assert GrowthStrategy("t", operator=IdentityBlock()).grow(net).at == 2
    with pytest.raises(ConfigError, match="growth position=3 is outside the valid range 1..2"):
        GrowthStrategy("t", operator=IdentityBlock()).grow(small_net(), None, 3)


def test_a_steered_widening_widens_the_given_block_alone() -> None:
    def widths(at: int | None) -> list[int]:
        net = small_net(3)
        strategy = WidthGrowthStrategy("t", operator=RandomWiden(), from_width=8, widen_by=4)
        growth = strategy.grow(net, None, at)
        assert growth.at == at
        return block_widths(net.arch)

    assert widths(0) == [12, 8, 8]
    assert widths(2) == [8, 8, 12]
    assert widths(None) == [12, 12, 12]  # not steered: every block, as before
    with pytest.raises(ConfigError, match="position=3 is no block of the network; valid: 0..2"):
        widths(3)


def test_merit_says_after_which_block_and_gradient_which_block() -> None:
    merit, gradient = Merit(steer=True), GradientGain(steer=True)
    assert merit.grow_at() is None and gradient.grow_at() is None  # nothing measured yet
    merit.where = gradient.where = 1
    assert merit.grow_at() == 2  # after block 1: block-list index 2
    assert gradient.grow_at() == 1


STEER = ["trigger.steer=true"]
REFUSED = [
    (["trigger=plateau", *STEER], "trigger=plateau does not say where to grow"),
    ([*STEER], "trigger=fixed does not say where to grow"),
    (
        ["trigger=merit", *STEER, "strategy=gradmax-widen"],
        "trigger=merit says where to insert a block (a depth strategy), but "
        "strategy=gradmax-widen takes which block to widen (a width strategy); valid: "
        "trigger=gradient for strategy=gradmax-widen",
    ),
    (
        ["trigger=gradient", *STEER, "strategy=identity-insert"],
        "strategy=identity-insert takes where to insert a block",
    ),
    (["trigger=merit", *STEER, "strategy.position=1"], "strategy.position=1 fixes where"),
    (["trigger=merit", *STEER, "strategy=from-scratch"], "strategy=from-scratch does not grow"),
    (
        ["trigger=gradient", *STEER, "strategy=net2wider", "strategy.layers=[0]"],
        "strategy.layers=[0] fixes which blocks widen",
    ),
    (
        ["trigger=merit", *STEER, "model=gpt", "data=shakespeare_char", "objective=lm"]
        + ["strategy=gstack", "depth=2"],
        "strategy=gstack takes no position",
    ),
    (["trigger=merit", "trigger.steer=often"], "trigger.steer=often is not allowed"),
]


@pytest.mark.parametrize(("overrides", "named"), REFUSED)
def test_a_trigger_that_cannot_steer_the_strategy_is_refused(overrides, named) -> None:
    with pytest.raises(ConfigError) as refused:
        validate(compose_cfg(overrides), environment=False)
    assert named in str(refused.value)
    assert "valid" in str(refused.value)


def test_the_refusal_through_the_entry_point_exits_2_before_any_work(tmp_path) -> None:
    run_dir = tmp_path / "run"
    args = ["trigger=merit", *STEER, "strategy=gradmax-widen", "logger=none"]
    result = run_cli([*args, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "trigger.steer=true: trigger=merit says" in errors[0]
    assert "valid: trigger=gradient for strategy=gradmax-widen" in errors[0]
    assert not (run_dir / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    "overrides", [["trigger=merit"], ["trigger=gradient", "strategy=gradmax-widen"], []]
)
def test_not_steering_keeps_the_fingerprint_and_steering_changes_it(overrides) -> None:
    cfg = compose_cfg(overrides)
    config = result_config(cfg)
    assert not [k for k in config if k.endswith("steer")]
    before = OmegaConf.to_container(cfg, resolve=True)  # the config before triggers steered
    del before["trigger"]["steer"]  # type: ignore[index]
    assert result_config(OmegaConf.create(before)) == config
    steered = result_config(compose_cfg([*overrides, "trigger.steer=true"]))
    assert steered["trigger.steer"] is True
    assert fingerprint(steered) != fingerprint(config)


# Seeds 0 and 1 steer stage 3's insertion to different blocks (identity-insert on digits).
MERIT = [*FAST, "trigger=merit", *STEER, "strategy=identity-insert", "depth=4"]
MERIT += ["train.epochs_per_stage=3"]
# Seeds 1 and 2 widen different blocks at stage 3 after stages of equal length.
GRADIENT = [*FAST, "trigger=gradient", *STEER, "strategy=gradmax-widen", "model.width=32"]
GRADIENT += ["strategy.widen_by=16", "strategy.final_width=80", "depth=3"]
# Seeds 2 and 3 train stage 1 alike, then widen different blocks. (gradmax-widen's new units,
# from an SVD of gradients, turn a stack's 1e-7 rounding into 1e-3 differences, steered or
# not: chaos, not stacking; net2wider's copies do not.)
NET2WIDER = [o.replace("gradmax-widen", "net2wider") for o in GRADIENT]
KEYS = ("epochs", "grow_at", "inserted_at", "steered", "widths", "val_loss", "trigger_state")


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("overrides", [MERIT, GRADIENT], ids=["merit", "gradient"])
@pytest.mark.parametrize("into", [1, 2], ids=["at-the-growth", "mid-stage"])
def test_a_steered_run_resumes_to_the_uninterrupted_run(
    overrides, into, tmp_path, monkeypatch
) -> None:
    """Killed in the third stage's first epoch (the resume grows again, where the trigger's
    saved state says) or its second (the `last` checkpoint holds the grown network)."""
    reference = run_in_process([*overrides, "seed=1"], tmp_path / "ref")
    grown = [s["grow_at"] for s in reference["stages"][1:]]
    assert all(s["steered"] for s in reference["stages"][1:]) and len(set(grown)) > 1, grown
    epochs = [s["epochs"] for s in reference["stages"]]
    assert epochs[2] >= into
    calls = {"n": 0}
    original = solo_runner.train_epoch

    def dies_in_the_third_stage(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == sum(epochs[:2]) + into:  # after the second steered growth
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(solo_runner, "train_epoch", dies_in_the_third_stage)
    with pytest.raises(Interrupt):
        run_in_process([*overrides, "seed=1"], tmp_path / "run")
    monkeypatch.setattr(solo_runner, "train_epoch", original)
    resumed = run_in_process([*overrides, "seed=1"], tmp_path / "run")
    assert resumed["resumes"] == 1
    for a, b in zip(reference["stages"], resumed["stages"], strict=True):
        assert {k: a.get(k) for k in KEYS} == {k: b.get(k) for k in KEYS}
    assert resumed["test_acc"] == reference["test_acc"]


def test_evaluate_rebuilds_a_network_widened_where_the_trigger_said(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    summary = run_in_process([*GRADIENT, "seed=2"], run_dir)
    widths = [s["widths"] for s in summary["stages"]]
    assert widths[-1] != [80, 80, 80]  # the growths went where the trigger said
    (run_dir / ".hydra").mkdir()  # what Hydra writes around a run
    OmegaConf.save(compose_cfg([*GRADIENT, "seed=2"]), run_dir / ".hydra" / "config.yaml")
    for stage in (1, 2, 3):
        assert evaluate_main([str(run_dir), "--stage", str(stage)]) == 0
        assert "reproduced" in capsys.readouterr().out
        # The recorded places, not the strategy's own (every block, each growth).
        cfg = compose_cfg([*GRADIENT, "seed=2"])
        net = rebuild_from_config(cfg, stage, (64,), 10, summary["stages"])
        assert block_widths(net.arch) == widths[stage]
        assert block_widths(rebuild_from_config(cfg, stage, (64,), 10).arch) != widths[stage]


@pytest.mark.parametrize(
    ("overrides", "seeds", "split"),
    [
        (
            MERIT,
            [0, 1, 2],
            "steers stage 3's growth to different places (seeds 0,1 at 2; seeds 2 at 1)",
        ),
        (
            NET2WIDER,
            [2, 3],
            "steers stage 2's growth to different places (seeds 2 at 0; seeds 3 at 2)",
        ),
    ],
    ids=["merit", "gradient"],
)
def test_a_stack_splits_where_the_places_differ_and_equals_its_solo_runs(
    overrides, seeds, split, tmp_path, caplog
) -> None:
    with caplog.at_level(logging.INFO, logger="growlab"):
        summaries = stacked(overrides, seeds, tmp_path / "stack")
    assert split in caplog.text
    for seed, summary in zip(seeds, summaries, strict=True):
        solo = run_in_process([*overrides, f"seed={seed}"], tmp_path / f"solo{seed}")
        assert summary["status"] == solo["status"] == "completed"
        assert summary["stages"][0]["stack_size"] == len(seeds)
        for a, b in zip(solo["stages"], summary["stages"], strict=True):
            same = ("epochs", "grow_at", "inserted_at", "steered", "widths")
            assert {k: a.get(k) for k in same} == {k: b.get(k) for k in same}
            assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)


def test_a_trigger_that_has_not_measured_leaves_the_growth_at_the_strategys_place(
    tmp_path, caplog
) -> None:
    # Stages of 2 epochs, a signal first measured at epoch 5: the trigger never says where.
    overrides = [*FAST, "trigger=merit", *STEER, "trigger.min_epochs=5", "depth=3"]
    overrides += ["trigger.stop_without_gain=false"]
    with caplog.at_level(logging.INFO, logger="growlab"):
        summary = run_in_process(overrides, tmp_path / "run")
    grown = summary["stages"][1:]
    assert [(s["steered"], s["grow_at"], s["inserted_at"]) for s in grown] == [
        (False, 1, 1),
        (False, 2, 2),
    ]
    assert "the growth trigger has not said where to grow" in caplog.text
    assert "steered" not in summary["stages"][0]
