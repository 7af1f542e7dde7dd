"""strategy=widen-lm (issue 26): a GPT's width multiplied by duplication keeps every logit, with
the heads multiplied or the head dimension; refusals; a run, evaluated and stacked."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import compose_cfg, read_summary, run_cli, run_in_process
from test_lm_growth import LM, X, logits

from growlab.cli.evaluate import main as evaluate_main
from growlab.config import ConfigError
from growlab.engine.stacking.session import StackSession
from growlab.growth.lm_widen import DuplicateWidth, LMWidthStrategy
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
