"""Carried optimizer state (`train.carry_optimizer_state=true`) follows each tensor, not its slot.

Each growth builds a new optimizer; growlab.engine.optim.carry_state gives every parameter that
was in the old optimizer its state back (Adam's exp_avg, exp_avg_sq and step) and leaves every
other parameter without state, so Adam starts it at zero. The cases where a slot-based carry
goes wrong: a block inserted in the middle (`strategy.position=1`: the blocks after it move to
a new index and a new block of the same shape takes their place), and a change of the trainable
set (freeze-all-but-new: the old block leaves the optimizer; finetune-all-after's fine-tune:
every frozen block comes back).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from conftest import FAST, run_in_process

from growlab.engine import run_base

MOMENTS = ("exp_avg", "exp_avg_sq", "step")


@dataclass
class Carry:
    """One call of carry_state: which tensors survived, and which started without state."""

    survivors: int
    fresh: int
    # Tensors of the old optimizer that are not in the new one (frozen now).
    departed: int
    # Surviving tensors whose index in the optimizer's parameter list changed.
    moved_slot: int
    # Surviving tensors that share a shape with a fresh tensor (a slot-based carry mixes them).
    shape_shared: int


def carried_by_identity(monkeypatch: pytest.MonkeyPatch) -> list[Carry]:
    """Check every carry_state call of the runs that follow; returns what each call did."""
    calls: list[Carry] = []
    original = run_base.carry_state

    def checked(old, new, moved=None):
        old_params = [p for g in old.param_groups for p in g["params"]]
        new_params = [p for g in new.param_groups for p in g["params"]]
        before = {
            p: {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in s.items()}
            for p, s in old.state.items()
        }
        carried = original(old, new, moved)
        slot = {id(p): j for j, p in enumerate(old_params)}
        old_ids = set(slot)
        survivors = [p for p in new_params if id(p) in old_ids]
        fresh = [p for p in new_params if id(p) not in old_ids]
        for p in survivors:
            assert p in before, "a surviving parameter had no state to carry"
            state = new.state[p]
            for key in MOMENTS:
                if key not in state or not torch.equal(
                    torch.as_tensor(state[key]), torch.as_tensor(before[p][key])
                ):
                    pytest.fail(f"{key} of a surviving {tuple(p.shape)} tensor is not its own")
        for p in fresh:
            if new.state.get(p):
                pytest.fail(f"a new {tuple(p.shape)} tensor starts with carried state")
        # Nothing of the tensors that left the optimizer lingers in the new one.
        assert {id(p) for p in new.state} <= {id(p) for p in new_params}
        assert carried == len(survivors)
        fresh_shapes = {tuple(p.shape) for p in fresh}
        calls.append(
            Carry(
                survivors=len(survivors),
                fresh=len(fresh),
                departed=len(old_params) - len(survivors),
                moved_slot=sum(1 for i, p in enumerate(new_params) if slot.get(id(p), i) != i),
                shape_shared=sum(1 for p in survivors if tuple(p.shape) in fresh_shapes),
            )
        )
        return carried

    monkeypatch.setattr(run_base, "carry_state", checked)
    return calls


def test_carry_follows_tensors_through_an_insertion_in_the_middle(tmp_path, monkeypatch) -> None:
    calls = carried_by_identity(monkeypatch)
    summary = run_in_process(
        [
            *FAST,
            "strategy=identity-insert",
            "strategy.position=1",
            "train.carry_optimizer_state=true",
        ],
        tmp_path / "run",
    )
    assert summary["status"] == "completed"
    assert [s["depth"] for s in summary["stages"]] == [1, 2, 3]
    # Depth 1 -> 2 inserts before the head (only block 0 exists); 2 -> 3 inserts at index 1,
    # pushing the old block 1 to index 2 behind a new block of its very shape.
    assert [(c.survivors, c.fresh, c.departed) for c in calls] == [(4, 2, 0), (6, 2, 0)]
    middle = calls[1]
    # The head's tensors come first (it is registered before the blocks), so only in the middle
    # does a surviving tensor change slot: the old block 1's two, whose slots the new block took.
    assert middle.moved_slot == 2
    assert middle.shape_shared >= 2  # the old block 1 has the new block's shapes


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # (survivors, fresh, departed) per growth. Stage 1 trains block 0 and the head; each
        # growth keeps the head, adds the new block and drops the last one, whose slots the new
        # block (of the same shapes from depth 2 on) takes.
        (["strategy=freeze-all-but-new"], [(2, 2, 2), (2, 2, 2)]),
        # The same, then the fine-tune unfreezes blocks 0 and 1, which were not in the last
        # optimizer (block 2 and the head were): they start at zero.
        (
            ["strategy=finetune-all-after", "strategy.finetune_epochs=1"],
            [(2, 2, 2), (2, 2, 2), (4, 4, 0)],
        ),
    ],
)
def test_carry_follows_tensors_through_a_change_of_the_trainable_set(
    tmp_path, monkeypatch, overrides, expected
) -> None:
    calls = carried_by_identity(monkeypatch)
    summary = run_in_process(
        [*FAST, *overrides, "train.carry_optimizer_state=true"], tmp_path / "run"
    )
    assert summary["status"] == "completed"
    assert [(c.survivors, c.fresh, c.departed) for c in calls] == expected


def test_a_stack_carries_each_replicas_own_state_as_its_solo_run_does(
    tmp_path, monkeypatch
) -> None:
    """Stacked, each replica's optimizer gets the stack's trained state back after every epoch
    (StackedState.write_back), so its carry at a growth in the middle is its solo run's."""
    from conftest import compose_cfg, read_summary

    from growlab.engine.stacking.session import StackSession

    calls = carried_by_identity(monkeypatch)
    overrides = [
        *FAST,
        "strategy=identity-insert",
        "strategy.position=1",
        "train.carry_optimizer_state=true",
    ]
    seeds = [0, 1]
    session = StackSession(len(seeds))
    for seed in seeds:
        cfg = compose_cfg([*overrides, f"seed={seed}"])
        session.join(cfg, tmp_path / f"stack{seed}", "val_acc")
    assert len(calls) == 2 * len(seeds)  # every replica carried at both growths
    for seed in seeds:
        stack = read_summary(tmp_path / f"stack{seed}")
        solo = run_in_process([*overrides, f"seed={seed}"], tmp_path / f"solo{seed}")
        assert stack["stack_size"] == len(seeds) and solo["stack_size"] == 1
        for a, b in zip(stack["stages"], solo["stages"], strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
