"""strategy=widen-lm (issue 26): a GPT's width multiplied by duplication keeps every logit, with
the heads multiplied or the head dimension; refusals; a run, evaluated and stacked."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from conftest import compose_cfg, read_summary, run_cli, run_in_process, without_timing
from test_lm_growth import LM, X, logits

from growlab.cli.evaluate import main as evaluate_main
from growlab.config import ConfigError
from growlab.engine import runners as solo_runner
from growlab.engine.optim import build_optimizer, carry_state
from growlab.engine.stacking.session import StackSession
from growlab.growth.lm_widen import DuplicateWidth, Widening
from growlab.growth.lm_widen_optim import scales_of
from growlab.growth.lm_widen_strategy import LMWidthStrategy
from growlab.growth.nets import GrowableNet, build_network, initial_arch
from growlab.validation import validate

WIDE = {"name": "gpt", "n_layer": 2, "n_head": 4, "n_embd": 64, "width": 64, "block_size": 16,
        "dropout": 0.0, "bias": True, "activation": "gelu", "norm": "layer"}  # fmt: skip


def net_64(trained: bool) -> GrowableNet:
    torch.manual_seed(0)
    net = build_network(initial_arch(dict(WIDE), (16,), 11, 2))
    with torch.no_grad():  # biases and norms away from their initial 0 and 1
        for p in net.parameters():
            if trained and p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    if trained:
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(10):
            loss = torch.nn.functional.cross_entropy(net(X).flatten(0, 1), X.roll(-1, 1).flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@pytest.mark.parametrize("keep_heads", [False, True])
@pytest.mark.parametrize("trained", [False, True])
def test_widening_64_to_128_changes_no_logit(trained, keep_heads) -> None:
    net = net_64(trained)
    before = logits(net)
    strategy = LMWidthStrategy("t", operator=DuplicateWidth(keep_heads=keep_heads), from_width=64)
    moved = strategy.grow(net).moved
    model = net.arch["model"]
    assert model["n_embd"] == 128 and model["n_head"] == (4 if keep_heads else 8)
    assert net.blocks[0].attn.qkv.weight.shape == (384, 128) and len(moved) == len(
        list(net.parameters())
    )
    assert (logits(net) - before).abs().max() <= 1e-5
    # Rebuilt from its architecture (a checkpoint), the same function.
    again = GrowableNet(net.arch)
    again.load_state_dict(net.state_dict())
    assert (logits(again) - before).abs().max() <= 1e-5


def test_the_query_scaling_is_what_keeps_the_head_dimension_growth_exact() -> None:
    net = net_64(trained=True)
    before = logits(net)
    LMWidthStrategy("t", operator=DuplicateWidth(keep_heads=True), from_width=64).grow(net)
    with torch.no_grad():  # undo the 1/sqrt(2) of the queries: the softmax is too cold
        net.blocks[0].attn.qkv.weight[:128].mul_(2**0.5)
    assert (logits(net) - before).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["strategy.final_width=24"], "strategy.final_width=24 is not a multiple"),
        (["strategy.final_width=16"], "strategy.final_width=16 is not a multiple"),
        (["strategy.trainable=new"], "strategy.trainable=new"),
        (["model.n_head=3"], "not divisible by model.n_head=3"),
    ],
)
def test_widen_lm_refusals(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(compose_cfg([*LM, "strategy=widen-lm", *overrides]))


RUN = [*LM, "strategy=widen-lm", "depth=1", "data.eval_windows=128", "train.batch_size=8",
       "train.steps_per_epoch=4", "train.epochs_per_stage=2", "train.num_threads=1"]  # fmt: skip


def test_a_widen_lm_run_is_exact_evaluated_and_stacks(tmp_path, capsys, caplog) -> None:
    done = run_cli([*RUN, f"hydra.run.dir={tmp_path / 'cli'}"], tmp_path)
    assert done.returncode == 0, done.stderr
    summary = read_summary(tmp_path / "cli")
    grown = summary["stages"][1]
    assert grown["width"] == 32 and grown["preservation_error"] <= 1e-5
    assert evaluate_main([str(tmp_path / "cli")]) == 0
    assert "-> reproduced" in capsys.readouterr().out
    session = StackSession(2)
    with caplog.at_level(logging.INFO, logger="growlab"):
        for seed in (0, 1):
            session.join(compose_cfg([*RUN, f"seed={seed}"]), tmp_path / f"k{seed}", "val_loss")
    assert "training 2 runs as one stack" in caplog.text
    solo = run_in_process([*RUN, "seed=1"], tmp_path / "solo1")
    stacked = read_summary(tmp_path / "k1")
    for a, b in zip(stacked["stages"], solo["stages"], strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-4)


def adam_step(net: GrowableNet, optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """One training step on a fixed batch; the change of the logits it makes."""
    before = logits(net)
    net.train()
    loss = torch.nn.functional.cross_entropy(net(X).flatten(0, 1), X.roll(-1, 1).flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return logits(net) - before


def optimizer_cfg(kind: str):
    return compose_cfg(
        [*LM, f"optimizer={kind}", "optimizer.lr=3e-3", "optimizer.weight_decay=0.01",
         "train.carry_optimizer_state=true"]
    )  # fmt: skip


def grown_with_state(net: GrowableNet, optimizer: torch.optim.Optimizer, cfg):
    """A copy of `net` (and of its optimizer) widened 64 -> 128 by strategy=widen-lm, and the
    optimizer a run builds after it, the state carried as a run carries it."""
    wide = copy.deepcopy(net)
    old = build_optimizer(cfg, wide)
    names = dict(wide.named_parameters())
    for name, p in net.named_parameters():
        old.state[names[name]] = copy.deepcopy(optimizer.state[p])
    growth = LMWidthStrategy("t", operator=DuplicateWidth(), from_width=64).grow(wide)
    new = build_optimizer(cfg, wide)
    carry_state(old, new, growth.moved)
    growth.carry(old, new)
    return wide, new


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_carried_adam_state_makes_the_grown_step_the_small_step(kind) -> None:
    torch.set_default_dtype(torch.float64)  # the check is of the transform, not of rounding
    try:
        cfg = optimizer_cfg(kind)
        net = net_64(trained=False)
        optimizer = build_optimizer(cfg, net)
        for _ in range(3):  # moments of a few steps
            adam_step(net, optimizer)
        wide, carried = grown_with_state(net, optimizer, cfg)
        plain_net, plain = grown_with_state(net, optimizer, cfg)
        for group in plain.param_groups:  # the moments alone, one learning rate for all
            group.update(lr=3e-3, eps=optimizer.defaults["eps"], weight_decay=0.01)
        small_step = adam_step(net, optimizer)
        grown_step, plain_step = adam_step(wide, carried), adam_step(plain_net, plain)
        scale = small_step.abs().max()
        assert (grown_step - small_step).abs().max() / scale <= 1e-5
        assert (plain_step - small_step).abs().max() / scale > 1e-2
    finally:
        torch.set_default_dtype(torch.float32)


def test_the_state_of_a_head_dimension_growth_is_refused() -> None:
    net = net_64(trained=False)
    with pytest.raises(ConfigError, match="strategy.keep_heads=true"):
        scales_of(
            Widening(2, 4, keep_heads=True),
            "blocks.0.attn.qkv.weight",
            net.blocks[0].attn.qkv.weight,
        )


def test_a_carried_widen_lm_run_resumes_exactly_and_stacks(tmp_path, monkeypatch, caplog):
    overrides = [*RUN, "train.carry_optimizer_state=true"]
    reference = run_in_process(overrides, tmp_path / "ref")
    calls = {"n": 0}
    original = solo_runner.train_epoch

    def dies_in_the_grown_stage(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(solo_runner, "train_epoch", dies_in_the_grown_stage)
    with pytest.raises(RuntimeError):
        run_in_process(overrides, tmp_path / "run")
    monkeypatch.setattr(solo_runner, "train_epoch", original)
    resumed = run_in_process(overrides, tmp_path / "run")  # the per-parameter groups rebuilt
    assert resumed["resumes"] == 1
    assert without_timing(resumed)["stages"] == without_timing(reference)["stages"]
    session = StackSession(2)
    with caplog.at_level(logging.INFO, logger="growlab"):
        for seed in (1, 0):
            session.join(
                compose_cfg([*overrides, f"seed={seed}"]), tmp_path / f"k{seed}", "val_loss"
            )
    assert "training 2 runs as one stack" in caplog.text
    for a, b in zip(read_summary(tmp_path / "k0")["stages"], reference["stages"], strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-4)
