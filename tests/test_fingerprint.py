"""Every key that can change a run's result changes its config fingerprint.

A run directory refuses (or resumes) by comparing `fingerprint(result_config(cfg))`
(growlab.engine.run_directory.folder): a result-determining key left out of it lets a rerun
with a different value reuse the old result. So these tests list every leaf of composed configs
(several models, data sets, strategies, optimizers and schedulers), change each one, and require
the fingerprint to change, except for the few keys named below that only change speed,
bookkeeping or where the run goes.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from enum import Enum
from typing import Any

import pytest
from conftest import CONF, compose_cfg
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from growlab.engine.run_directory import folder as run_dir
from growlab.engine.run_directory.folder import fingerprint, result_config

# Keys that do not change the numbers a run produces. Named here, not read from run_dir, so
# that declaring a key not-result (run_dir.NOT_RESULT) is a decision this file records too.
NOT_RESULT_PREFIXES = ("logger.", "hydra.")
NOT_RESULT_KEYS = {
    "device",
    "resume",
    "return_metric",
    "train.checkpoint_every_epochs",
    "train.num_threads",
    "train.cache_frozen_features",
    "train.cache_max_mb",
    "train.cuda_graphs",
    "data.root",
    "data.download",
    "data.archive",
}

COMPOSITIONS = [
    [],
    ["strategy=identity-insert", "strategy.position=1", "scheduler=cosine", "optimizer=sgd"],
    ["strategy=finetune-all-after", "scheduler=step", "optimizer=adamw", "model.norm=batch"],
    ["strategy=greedy-autoencoder", "data=blobs", "scheduler=warmup_cosine"],
    ["strategy=conv-multiplicative", "model=cnn", "data=mnist1d"],
    ["strategy=net2wider", "strategy.layers=[0]", "strategy.widen_by=8"],
    ["strategy=gradmax-widen", "strategy.final_width=128", "data=mnist"],
    ["strategy=random-widen", "scheduler=cosine", "scheduler.restart_each_stage=true"],
    ["strategy=from-scratch", "model=backbone", "data=flowers102", "train.max_loss=5.0"],
    ["strategy=from-scratch-wide", "model=cnn", "data=cifar10"],
    ["strategy=msg-depth", "model=gpt", "data=shakespeare_char", "objective=lm"],
    ["trigger=plateau", "data=teacher", "train.epochs_per_stage=[3,1,1,1]"],
    ["trigger=merit", "trigger.steer=true", "strategy=identity-insert"],
    ["data=teacher", "data.task=regression", "objective=regression"],
]


def is_result_key(key: str) -> bool:
    return not (key in NOT_RESULT_KEYS or key.startswith(NOT_RESULT_PREFIXES))


REAL_CLASSES = [
    "growlab.growth.operators.RandomBlock",
    "growlab.growth.operators.IdentityBlock",
    "growlab.growth.objectives.Reconstruction",
    "growlab.growth.triggers.GrowthTrigger",
]


@functools.cache
def composed(overrides: tuple[str, ...]) -> DictConfig:
    return compose_cfg(list(overrides))


def leaves(node: DictConfig, prefix: str = "") -> Iterator[str]:
    """Dotted names of every value of the config (a list counts as one value)."""
    for key in node:
        name = f"{prefix}{key}"
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not OmegaConf.is_interpolation(node, str(key)):
            yield from leaves(child, f"{name}.")
        else:
            yield name


def alternatives(cfg: DictConfig, key: str) -> list[Any]:
    """Values to try for `key` instead of its own, most natural first."""
    value = OmegaConf.select(cfg, key)
    if key.startswith(("strategy", "trigger")) and key.endswith("._target_"):
        # The fingerprint imports the classes a strategy or trigger names: another real one.
        return [c for c in REAL_CLASSES if c != value]
    parent, _, leaf = key.rpartition(".")
    node = (OmegaConf.select(cfg, parent) if parent else cfg)._get_node(leaf)  # type: ignore[union-attr]
    ref = getattr(getattr(node, "_metadata", None), "ref_type", None)
    if isinstance(value, Enum) or (isinstance(ref, type) and issubclass(ref, Enum)):
        return [m for m in ref if m != value]  # type: ignore[union-attr]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [value * 2 + 0.5]
    if isinstance(value, str):
        return [value + "_changed"]
    if isinstance(value, ListConfig):
        items = OmegaConf.to_container(value)
        assert isinstance(items, list)
        return [[*items, items[0]] if items else [1], []]
    if value is None:
        return [1, 0.5, "changed", True, [1]]
    raise AssertionError(f"{key}: no alternative for {value!r}")


def changed_fingerprint(cfg: DictConfig, key: str) -> str | None:
    """The fingerprint with `key` set to its first alternative the schema accepts (None when
    it accepts none)."""
    for value in alternatives(cfg, key):
        out = copy.deepcopy(cfg)
        try:
            OmegaConf.update(out, key, value, merge=False)
            return fingerprint(result_config(out))
        except OmegaConfBaseException:
            continue
    return None


def result_keys_outside_the_fingerprint(cfg: DictConfig) -> tuple[list[str], list[str]]:
    """(result keys whose change leaves the fingerprint as it was, keys no value could change)."""
    reference = fingerprint(result_config(cfg))
    missing: list[str] = []
    unchangeable: list[str] = []
    for key in filter(is_result_key, leaves(cfg)):
        new = changed_fingerprint(cfg, key)
        if new is None:
            unchangeable.append(key)
        elif new == reference:
            missing.append(key)
    return missing, unchangeable


@pytest.mark.parametrize("overrides", COMPOSITIONS, ids=lambda o: ",".join(o) or "defaults")
def test_every_result_key_changes_the_fingerprint(overrides: list[str]) -> None:
    cfg = composed(tuple(overrides))
    missing, unchangeable = result_keys_outside_the_fingerprint(cfg)
    assert not missing, f"result keys that do not change the fingerprint: {missing}"
    assert not unchangeable, f"keys the test could not change (teach it how): {unchangeable}"


def test_the_sweep_covers_every_group_and_the_scheduler_keys() -> None:
    """The compositions above reach every group's options, and scheduler.* keys among them."""
    keys = {k for o in COMPOSITIONS for k in leaves(composed(tuple(o)))}
    for group in ("model", "data", "strategy", "optimizer", "scheduler", "train"):
        assert any(k.startswith(f"{group}.") for k in keys), group
    assert {"depth", "seed"} <= keys
    assert {
        "scheduler._target_",
        "scheduler.eta_min",
        "scheduler.step_size",
        "scheduler.gamma",
        "scheduler.warmup_epochs",
        "scheduler.restart_each_stage",
    } <= keys

    # No experiment file brings a key the compositions above leave unchecked.
    for path in sorted((CONF / "experiment").glob("*.yaml")):
        extra = set(leaves(composed((f"experiment={path.stem}",)))) - keys
        assert not extra, f"experiment={path.stem}: keys no composition here checks: {extra}"


def test_keys_declared_not_result_are_named_here_and_leave_the_fingerprint_alone() -> None:
    assert run_dir.NOT_RESULT <= NOT_RESULT_KEYS, (
        "run_dir.NOT_RESULT leaves keys out of the fingerprint that this test does not know "
        f"as not-result: {sorted(run_dir.NOT_RESULT - NOT_RESULT_KEYS)}; check that they "
        "cannot change a result, then add them to NOT_RESULT_KEYS"
    )
    cfg = composed(())
    reference = fingerprint(result_config(cfg))
    keys = [k for k in leaves(cfg) if k in run_dir.NOT_RESULT]
    assert keys
    for key in keys:
        assert changed_fingerprint(cfg, key) == reference, key
