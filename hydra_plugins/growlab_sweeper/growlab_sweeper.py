"""Hydra's basic sweeper, composing fewer configs before a sweep starts.

Hydra's BasicSweeper composes every job's config up front to fail early, and the launcher then
composes each again to run it: a sweep pays composition twice per job. This sweeper composes up
front only a subset of jobs in which every swept value appears at least once; a bad value, key
or type still fails before any job runs. (It lives in `hydra_plugins` because Hydra only
instantiates plugins from that namespace, and it loads them without `sys.modules`, so no
`from __future__ import annotations` here: dataclasses could not resolve string annotations.)
"""


from collections.abc import Sequence
from dataclasses import dataclass

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore


def covering_subset(batch: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """Jobs of `batch` chosen so that each override string appears in at least one of them."""
    seen: set[str] = set()
    chosen = []
    for overrides in batch:
        if not seen.issuperset(overrides):
            chosen.append(overrides)
            seen.update(overrides)
    return chosen


class GrowlabSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        super().validate_batch_is_legal(covering_subset(batch))


@dataclass
class GrowlabSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.growlab_sweeper.growlab_sweeper.GrowlabSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="growlab", node=GrowlabSweeperConf, provider="growlab"
)
