"""The package's growth triggers (plateau, budget, gap, gradient, merit): each one's decision on
scripted histories (exactly `patience`, equal losses, NaN), the signal triggers' measurement
on a real network (its cost, and that it changes nothing), the stop-growing decision (stages
dropped, the summary says where), and a run interrupted mid-stage resuming to the same
decisions as an uninterrupted one, for every trigger."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import FAST, compose_cfg, run_in_process

from growlab.config import ConfigError
from growlab.engine import runners as solo_runner
from growlab.growth.nets import build_network, initial_arch
from growlab.growth.trigger_rules import Budget, Gap, Plateau
from growlab.growth.trigger_signals import PASSES, GradientGain, Merit
from growlab.growth.triggers import EpochReport, build_trigger
from growlab.growth.widening import GrowthData
from growlab.validation import validate


def report(epoch: int, val: float, train: float = 1.0, flops: float = 0.0) -> EpochReport:
    return EpochReport(0, epoch, 10, "train", train, val, 0.5, cum_train_flops=flops)


def plateau_decisions(trigger: Plateau, losses: list[float]) -> list[bool]:
    trigger.begin_stage(0, 10)
    return [trigger.stage_done(report(i + 1, loss)) for i, loss in enumerate(losses)]


def test_plateau_ends_after_exactly_patience_stale_epochs() -> None:
    assert plateau_decisions(Plateau(patience=2), [1.0, 0.9, 0.9, 0.9]) == [
        False, False, False, True,
    ]  # fmt: skip
    # An equal loss is no improvement; a NaN is never progress nor a new best.
    assert plateau_decisions(Plateau(patience=1), [1.0, 1.0]) == [False, True]
    trigger = Plateau(patience=2)
    assert plateau_decisions(trigger, [1.0, math.nan, 0.99]) == [False, False, False]
    assert trigger.state_dict() == {
        "best": 0.99,
        "stale": 0,
        "stage_best": 0.99,
        "before_best": math.inf,
        "chance": math.inf,
    }
    # Its maximum per stage: the knob, else the stage's planned epochs.
    assert Plateau(max_epochs_per_stage=4).max_epochs(10) == 4
    assert Plateau().max_epochs(7) == 7


def test_a_stage_that_did_not_lower_the_validation_loss_stops_growth() -> None:
    trigger = Plateau(patience=5)
    for stage, losses in enumerate([[2.0, 1.0], [1.5, 0.9], [0.95, math.nan, 0.9]]):
        trigger.begin_stage(stage, 5)
        for epoch, loss in enumerate(losses):
            trigger.stage_done(report(epoch + 1, loss))
        reason = trigger.stop_growing()
        # Stage 0 has nothing before it; stage 1 beat 1.0; stage 2 only equalled 0.9.
        assert (reason is None) is (stage < 2), (stage, reason)
    assert "(best 0.9, before it 0.9)" in str(reason)
    assert Plateau(stop_without_gain=False).stop_growing() is None
    # min_gain: a stage must lower the loss by that fraction; exactly that is not enough.
    strict = Plateau(min_gain=0.25)
    for stage, loss in enumerate([1.0, 0.75]):
        strict.begin_stage(stage, 5)
        strict.stage_done(report(1, loss))
    assert "min_gain=0.25" in str(strict.stop_growing())
    assert not Budget(total_flops=1.0).stop_without_gain  # a schedule grows regardless


def test_a_first_stage_above_chance_counts_as_chance() -> None:
    # Shuffled labels: the first stage never beat chance (2.30); the second only reached it.
    trigger = Plateau(patience=5)
    for stage, loss in enumerate([2.35, 2.30]):
        trigger.begin_stage(stage, 5)
        trigger.stage_done(EpochReport(stage, 1, 5, "train", 1.0, loss, 0.1, chance_loss=2.3))
    assert "before it 2.3)" in str(trigger.stop_growing())
    # Unknown chance (NaN): the first stage's loss is the bar, so the second stage gained.
    unknown = Plateau(patience=5)
    for stage, loss in enumerate([2.35, 2.30]):
        unknown.begin_stage(stage, 5)
        unknown.stage_done(EpochReport(stage, 1, 5, "train", 1.0, loss, 0.1))
    assert unknown.stop_growing() is None


def test_budget_grows_at_its_fractions_and_stops_when_spent() -> None:
    budget = Budget(total_flops=100.0, fractions=[0.25, 0.5])
    budget.begin_stage(0, 5)
    assert [budget.stage_done(report(e, 1.0, flops=f)) for e, f in [(1, 20), (2, 25)]] == [
        False, True,
    ]  # fmt: skip
    assert budget.stop_growing() is None
    budget.begin_stage(2, 5)  # past the list: the whole budget
    assert not budget.stage_done(report(1, 1.0, flops=99.0))
    assert budget.stage_done(report(2, 1.0, flops=100.0))
    assert "budget" in str(budget.stop_growing())
    with pytest.raises(ValueError, match="fractions"):
        Budget(total_flops=1.0, fractions=[0.5, 0.25])


def test_gap_ends_when_training_stops_gaining_and_stops_growth_on_a_wide_gap() -> None:
    gap = Gap(min_epochs=2, min_improvement=0.1, max_gap=0.5)
    gap.begin_stage(0, 10)
    # Epoch 1: no previous loss; epoch 2 gains 50%; epoch 3 an equal loss: done.
    trains = [1.0, 0.5, 0.5]
    assert [gap.stage_done(report(i + 1, 0.6, train=t)) for i, t in enumerate(trains)] == [
        False, False, True,
    ]  # fmt: skip
    assert gap.stop_growing() is None  # gap (0.6 - 0.5) / 0.6 < 0.5
    gap.begin_stage(1, 10)
    assert not gap.stage_done(report(1, 2.0, train=math.nan))
    assert not gap.stage_done(report(2, 2.0, train=0.5))  # after a NaN: no gain measured
    assert gap.stage_done(report(3, 2.0, train=0.5))
    assert "gap 0.750" in str(gap.stop_growing())


def small_net_and_data(seed: int = 0) -> tuple[torch.nn.Module, GrowthData]:
    torch.manual_seed(seed)
    model = {"name": "mlp", "width": 8, "activation": "relu", "norm": "batch", "dropout": 0.0}
    net = build_network(initial_arch(model, (5,), 3, 2))
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    return net, GrowthData(x, y, 16, torch.nn.functional.cross_entropy)


@pytest.mark.parametrize("cls", [GradientGain, Merit])
def test_a_signal_is_measured_at_its_cost_and_changes_nothing(cls) -> None:
    net, data = small_net_and_data()
    net.train()
    net.blocks[0].eval()  # a frozen block stays in eval mode
    for p in net.blocks[0].parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trigger = cls(batches=2, max_share=1.0)
    trigger.begin_stage(0, 5)
    spent = trigger.measure(net, data, forward_flops=10.0)
    assert spent == PASSES * 10.0 * 32  # two batches of 16
    assert math.isfinite(trigger.signal) and trigger.signal > 0
    assert trigger.where in range(net.depth)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert not net.blocks[0].training and net.blocks[1].training
    # The same network and batches give the same signal (a resume measures the same).
    again = cls(batches=2, max_share=1.0)
    again.begin_stage(0, 5)
    again.measure(net, data, forward_flops=10.0)
    assert again.signal == trigger.signal


def test_a_signal_looks_at_most_max_share_of_the_training_set() -> None:
    net, data = small_net_and_data()  # 40 training examples, batches of 16
    capped = GradientGain(batches=2, max_share=0.25)
    capped.begin_stage(0, 5)
    assert capped.measure(net, data, forward_flops=10.0) == PASSES * 10.0 * 10
    whole = GradientGain(batches=2, max_share=1.0)
    whole.begin_stage(0, 5)
    assert whole.measure(net, data, forward_flops=10.0) == PASSES * 10.0 * 32
    with pytest.raises(ValueError, match="max_share=0"):
        GradientGain(max_share=0.0)


def test_a_signal_trigger_decides_at_its_threshold_and_stops_below() -> None:
    trigger = GradientGain(threshold=0.5, stop_below=0.1, min_epochs=2)
    trigger.begin_stage(0, 4)
    for epoch, signal, done in [(1, 0.9, False), (2, 0.5, True), (2, 0.49, False)]:
        trigger.signal = signal
        assert trigger.stage_done(report(epoch, 1.0)) is done
    trigger.signal = math.nan
    assert not trigger.stage_done(report(3, 1.0))  # a NaN signal never grows
    trigger.best = 0.05
    assert "stop_below=0.1" in str(trigger.stop_growing())
    trigger.best = 0.1
    assert trigger.stop_growing() is None
    trigger.begin_stage(1, 4)
    net, data = small_net_and_data()
    assert trigger.measure(net, data, 1.0) == 0.0  # before min_epochs: nothing measured


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["trigger=plateau", "trigger.patience=0"], "patience=0"),
        (["trigger=budget", "trigger.total_flops=1e9", "trigger.fractions=[0.5,2]"], "fractions"),
        (["trigger=gradient", "trigger.batches=0"], "batches=0"),
        (["trigger=merit", "trigger.threshold=-1"], "threshold=-1"),
        (["trigger=gap", "trigger.max_gap=0"], "max_gap=0"),
    ],
)
def test_a_bad_knob_is_refused_naming_it(overrides, named) -> None:
    with pytest.raises(ConfigError, match=named):
        build_trigger(compose_cfg(overrides).trigger)


# Each trigger set so that its stages end at different epochs on digits (debug=fast).
TRIGGERS = {  # epochs per stage on digits: [5,4,4,4], [3,3,1,3], [6,5,5,4], [6,5,5,3], [6,5,3,3]
    "plateau": ["trigger=plateau", "trigger.patience=1", "trigger.min_delta=0.2"],
    "budget": ["trigger=budget", "trigger.total_flops=5e8", "trigger.fractions=[0.2,0.5,0.6]"],
    "gap": ["trigger=gap", "trigger.min_improvement=0.25", "trigger.min_epochs=3"],
    "gradient": ["trigger=gradient", "trigger.threshold=0.6", "trigger.min_epochs=2"],
    "merit": ["trigger=merit", "trigger.threshold=0.6"],
}


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("name", list(TRIGGERS))
def test_a_run_interrupted_mid_stage_resumes_to_the_same_decisions(
    name, tmp_path, monkeypatch
) -> None:
    overrides = [*FAST, *TRIGGERS[name], "depth=4", "train.epochs_per_stage=[6,5,5,5]"]
    reference = run_in_process(overrides, tmp_path / "ref")
    assert reference["status"] == "completed"
    epochs = [s["epochs"] for s in reference["stages"]]
    assert epochs != [6, 5, 5, 5], "the trigger never ended a stage early"
    calls = {"n": 0}
    original = solo_runner.train_epoch

    def dies_in_the_second_stage(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == epochs[0] + epochs[1]:  # the epoch that decides stage 2's end
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(solo_runner, "train_epoch", dies_in_the_second_stage)
    with pytest.raises(Interrupt):
        run_in_process(overrides, tmp_path / "run")
    monkeypatch.setattr(solo_runner, "train_epoch", original)
    resumed = run_in_process(overrides, tmp_path / "run")
    assert resumed["resumes"] == 1
    keys = ("epochs", "val_loss", "signal_flops", "cum_train_flops", "trigger_state")
    for a, b in zip(reference["stages"], resumed["stages"], strict=True):
        assert {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}
    assert reference.get("stopped_growing") == resumed.get("stopped_growing")
    assert reference["config"]["trigger.name"] == name


def test_a_trigger_that_stops_growth_drops_the_growth_stages_left(tmp_path) -> None:
    never = ["trigger=gradient", "trigger.threshold=1e9", "trigger.stop_below=1e8"]
    stops = [*never, "depth=4", "strategy=finetune-all-after"]
    summary = run_in_process([*FAST, *stops, "train.epochs_per_stage=3"], tmp_path / "run")
    assert summary["status"] == "completed"
    assert summary["stopped_growing"]["stage"] == 0
    assert "stayed below stop_below" in summary["stopped_growing"]["reason"]
    assert [s["phase"] for s in summary["stages"]] == ["train", "finetune"]
    assert summary["stages"][-1]["depth"] == 1
    fixed = run_in_process([*FAST, "depth=2"], tmp_path / "fixed")
    assert "stopped_growing" not in fixed and fixed["config"]["trigger.name"] == "fixed"
    assert all(s["signal_flops"] == 0 for s in fixed["stages"])


def test_a_trigger_that_cannot_measure_the_model_is_refused_before_any_work() -> None:
    cfg = compose_cfg(["model=gpt", "data=shakespeare_char", "objective=lm", "trigger=gradient"])
    with pytest.raises(ConfigError, match="trigger=gradient needs model=mlp\\|cnn, got model=gpt"):
        validate(cfg, environment=False)
