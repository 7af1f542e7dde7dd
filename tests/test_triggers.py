"""Growth triggers: a user's trigger (examples/my_growth/triggers.py, a plateau rule) from its
own package and config folder ends stages when it says so, solo and stacked, resumes to the
same decisions, and is refused in one line when misconfigured; the default fixed schedule
keeps every existing run's fingerprint."""

from __future__ import annotations

import math
import os

import pytest
from conftest import FAST, REPO, compose_cfg, read_summary, run_cli, run_in_process, sweep_runs

from growlab.config import ConfigError
from growlab.engine import runners as solo_runner
from growlab.engine.run_directory.result_identity import fingerprint, result_config
from growlab.growth.triggers import EpochReport, FixedEpochs, build_trigger

EXAMPLES = REPO / "examples"
PLATEAU = [
    f"hydra.searchpath=[file://{EXAMPLES / 'conf'}]",
    "trigger=my-plateau",
    "trigger.patience=1",
    "trigger.min_delta=0.1",
    "trigger.max_epochs_per_stage=6",
    "depth=3",
    "logger=none",
]


@pytest.fixture
def user_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/ importable, as the user's own package is, in this process and its children."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(EXAMPLES), path])))


def report(epoch: int, val_loss: float, planned: int = 10) -> EpochReport:
    return EpochReport(0, epoch, planned, "train", 1.0, val_loss, 0.5)


def plateau(**fields):
    from my_growth.triggers import Plateau

    return Plateau(**fields)


def decisions(trigger, losses: list[float]) -> list[bool]:
    trigger.begin_stage(0, 10)
    return [trigger.stage_done(report(i + 1, loss)) for i, loss in enumerate(losses)]


def test_fixed_ends_a_stage_after_its_planned_epochs() -> None:
    fixed = FixedEpochs()
    assert [fixed.stage_done(report(e, 1.0, planned=3)) for e in (1, 2, 3)] == [False, False, True]
    assert fixed.max_epochs(3) == 3


@pytest.mark.usefixtures("user_package")
def test_plateau_decides_on_scripted_histories() -> None:
    # Exactly `patience` epochs without improvement ends the stage, not one fewer.
    assert decisions(plateau(patience=2), [1.0, 0.9, 0.9, 0.9]) == [False, False, False, True]
    # An equal loss is no improvement; an improvement resets the count.
    assert decisions(plateau(patience=2), [1.0, 1.0, 0.5, 0.5, 0.5]) == [
        False, False, False, False, True,
    ]  # fmt: skip
    # min_delta: an improvement smaller than it does not count.
    assert decisions(plateau(patience=1, min_delta=0.1), [1.0, 0.95]) == [False, True]
    assert decisions(plateau(patience=1, min_delta=0.1), [1.0, 0.85]) == [False, False]
    # A NaN loss is no progress, never a new best.
    trigger = plateau(patience=2)
    assert decisions(trigger, [1.0, math.nan, 0.99]) == [False, False, False]
    assert trigger.state_dict() == {"best": 0.99, "stale": 0}
    # A new stage starts afresh.
    trigger.begin_stage(1, 10)
    assert trigger.state_dict() == {"best": math.inf, "stale": 0}


def test_the_fixed_default_keeps_the_fingerprints_of_runs_from_before_triggers() -> None:
    default = result_config(compose_cfg([]))
    assert not [key for key in default if key.startswith("trigger")]
    assert result_config(compose_cfg(["trigger=fixed"])) == default
    renamed = result_config(compose_cfg(["trigger.name=mine"]))
    assert fingerprint(renamed) != fingerprint(default)


@pytest.mark.usefixtures("user_package")
def test_a_user_trigger_is_part_of_the_run_identity_code_included() -> None:
    config = result_config(compose_cfg(PLATEAU))
    assert config["trigger.patience"] == 1 and "code.my_growth.triggers.Plateau" in config
    other = result_config(compose_cfg([*PLATEAU, "trigger.patience=2"]))
    assert fingerprint(other) != fingerprint(config)


@pytest.mark.usefixtures("user_package")
@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["+trigger.patiense=3"], ["patiense", "valid keys:", "patience", "min_delta"]),
        (["trigger.patience=0"], ["trigger=my-plateau", "patience=0"]),
        (["trigger._target_=my_growth.triggers.Nope"], ["trigger=my-plateau", "Nope"]),
    ],
)
def test_a_bad_trigger_is_refused_naming_it(overrides, named) -> None:
    cfg = compose_cfg([*PLATEAU, *overrides])
    with pytest.raises(ConfigError) as refused:
        build_trigger(cfg.trigger)
    assert all(n in str(refused.value) for n in named), str(refused.value)


def test_a_class_that_is_not_a_trigger_is_refused() -> None:
    cfg = compose_cfg(["trigger._target_=growlab.growth.objectives.Classification"])
    with pytest.raises(ConfigError, match="does not build a growlab.growth.triggers.GrowthTrigger"):
        build_trigger(cfg.trigger)


@pytest.mark.usefixtures("user_package")
def test_plateau_through_the_cli_solo_and_stacked_gives_the_same_uneven_stages(tmp_path) -> None:
    seeds = ["seed=0,1", "train.epochs_per_stage=4"]
    solo = run_cli(["-m", *PLATEAU, *seeds, f"hydra.sweep.dir={tmp_path / 'solo'}"], tmp_path)
    assert solo.returncode == 0, solo.stderr[-3000:]
    stacked_args = [*PLATEAU, *seeds, "hydra.sweeper.stack_seeds=true"]
    stacked = run_cli(["-m", *stacked_args, f"hydra.sweep.dir={tmp_path / 'stack'}"], tmp_path)
    assert stacked.returncode == 0, stacked.stderr[-3000:]
    # Seeds 0 and 1 end the second stage at different epochs: the stack goes on one by one.
    assert "the growth trigger ends stage 2 after 5 epoch(s) for seeds 0 only" in stacked.stdout
    for one, two in zip(sweep_runs(tmp_path / "solo"), sweep_runs(tmp_path / "stack"), strict=True):
        a, b = read_summary(one), read_summary(two)
        epochs = [s["epochs"] for s in a["stages"]]
        assert epochs == [s["epochs"] for s in b["stages"]]
        assert len(set(epochs)) > 1 and max(epochs) <= 6  # ended by the plateau, capped at 6
        assert b["stages"][0]["stack_size"] == 2
        for x, y in zip(a["stages"], b["stages"], strict=True):
            assert y["val_loss"] == pytest.approx(x["val_loss"], rel=1e-4)
        assert a["config_fingerprint"] == b["config_fingerprint"]
    first = [read_summary(run)["stages"][1]["epochs"] for run in sweep_runs(tmp_path / "solo")]
    assert first[0] != first[1]


class Interrupt(Exception):
    pass


@pytest.mark.usefixtures("user_package")
def test_a_run_interrupted_mid_stage_resumes_to_the_same_decisions(tmp_path, monkeypatch) -> None:
    overrides = [*FAST, *PLATEAU]
    reference = run_in_process(overrides, tmp_path / "ref")
    epochs = [s["epochs"] for s in reference["stages"]]
    assert len(set(epochs)) > 1, epochs

    calls = {"n": 0}
    original = solo_runner.train_epoch

    def dies_in_the_second_stage(*args, **kwargs):
        calls["n"] += 1
        # The epoch whose decision ends stage 2 compares with the best loss saved before it.
        if calls["n"] == epochs[0] + epochs[1]:
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(solo_runner, "train_epoch", dies_in_the_second_stage)
    with pytest.raises(Interrupt):
        run_in_process(overrides, tmp_path / "run")
    monkeypatch.setattr(solo_runner, "train_epoch", original)
    resumed = run_in_process(overrides, tmp_path / "run")
    assert resumed["resumes"] == 1
    assert [s["epochs"] for s in resumed["stages"]] == epochs
    assert [s["val_loss"] for s in resumed["stages"]] == [
        s["val_loss"] for s in reference["stages"]
    ]
