"""The default launcher: Hydra's basic launcher (every job in this process, one after the
other), which also trains stacks of seeds (hydra.sweeper.stack_seeds=true; stacks.py).

(No `from __future__ import annotations`: Hydra instantiates plugins by dataclass config.)
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn

from hydra_plugins.growlab_launcher.stacks import run_stack


class InProcessLauncher(BasicLauncher):
    # Sizes of consecutive stacks of seeds to train together (set by growlab's sweeper).
    stacks: list[int] | None = None

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        if self.stacks is None:
            return super().launch(job_overrides, initial_job_idx)
        # Not at module level: Hydra imports every plugin for every app.
        from growlab.cli.exit_status import work_started

        work_started()
        returns: list[JobReturn] = []
        first = 0
        for size in self.stacks:
            jobs = job_overrides[first : first + size]
            start = initial_job_idx + first
            if size == 1:
                returns.extend(super().launch(jobs, start))
            else:
                launch = functools.partial(
                    BasicLauncher.launch, job_overrides=jobs, initial_job_idx=start
                )
                returns.extend(run_stack(self, size, launch))
            first += size
        return returns


@dataclass
class InProcessLauncherConf:
    _target_: str = "hydra_plugins.growlab_launcher.in_process.InProcessLauncher"


ConfigStore.instance().store(
    group="hydra/launcher", name="in_process", node=InProcessLauncherConf, provider="growlab"
)
