"""The arms of experiment=findings_lm_budget (conf/lm_arm/): each composes into a valid run
with its own strategy, width and trigger, and every grown arm spends from-scratch's budget."""

from __future__ import annotations

import pytest
from omegaconf import DictConfig

from growlab.validation import validate
from tests.conftest import CONF, compose_cfg

ARMS = sorted(p.stem for p in (CONF / "lm_arm").glob("*.yaml"))
# arm -> (strategy, starting width, start depth, grow at, optimizer state carried)
EXPECTED = {
    "scratch": ("from-scratch", 64, 4, None, False),
    "widen25": ("widen-lm", 32, 4, 0.25, False),
    "widen50": ("widen-lm", 32, 4, 0.5, False),
    "widen75": ("widen-lm", 32, 4, 0.75, False),
    "widen50carry": ("widen-lm", 32, 4, 0.5, True),
    "zero25": ("zero-insert", 64, 3, 0.25, False),
    "zero50": ("zero-insert", 64, 3, 0.5, False),
    "zero75": ("zero-insert", 64, 3, 0.75, False),
}


def arm(experiment: str, name: str) -> DictConfig:
    return compose_cfg([f"experiment={experiment}", f"+lm_arm={name}"])


def test_every_arm_is_listed() -> None:
    assert sorted(EXPECTED) == ARMS


@pytest.mark.parametrize("name", ARMS)
def test_arm_composes(name: str) -> None:
    cfg = arm("findings_lm_budget", name)
    validate(cfg, environment=False)
    strategy, width, start, grow_at, carry = EXPECTED[name]
    got = (cfg.strategy.name, cfg.model.n_embd, cfg.train.start_depth)
    assert got == (strategy, width, start)
    assert cfg.depth == 4 and cfg.train.carry_optimizer_state is carry
    if grow_at is None:
        assert cfg.trigger.name == "fixed"
    else:
        assert cfg.trigger.name == "budget" and list(cfg.trigger.fractions) == [grow_at]
    if strategy == "widen-lm":
        assert cfg.strategy.final_width == 64


def test_grown_arms_share_one_budget() -> None:
    """Every grown arm spends the same budget (from-scratch's training FLOPs, 1.866e11 as its
    summary records them)."""
    budgets = {arm("findings_lm_budget", n).trigger.total_flops for n in ARMS if n != "scratch"}
    assert budgets == {1.8656e11}
