"""Stacks of seeds are the launcher's business (hydra.sweeper.stack_seeds=true).

The sweeper tells a growlab launcher the sizes of consecutive stacks (`stacks`); the launcher
runs each stack's jobs through Hydra as usual (run directory, `.hydra/`, job number, log
file), but with a `StackSession`'s task function instead of growlab's: each job joins the
stack and the last one trains it (growlab.engine.stacking.session). Once every job ran, each
job's return carries the outcome its stack produced. Hydra's own code runs each job: only the
task function differs.

(No `from __future__ import annotations`: Hydra instantiates plugins by dataclass config.)
"""

import copy
from collections.abc import Callable, Sequence
from typing import Any

from hydra.core.utils import JobReturn, JobStatus


def run_stack(
    launcher: Any, size: int, run_jobs: Callable[[Any], Sequence[JobReturn]]
) -> list[JobReturn]:
    """Run one stack's `size` jobs as one stack: `run_jobs(joining)` runs them Hydra's way
    through `joining`, a copy of `launcher` whose task function joins the stack (a copy, so
    the launcher itself stays picklable for a requeue while the stack trains). Their returns,
    each with its run's outcome."""
    # Not at module level: Hydra imports every plugin for every app, and this pulls torch.
    from growlab.engine.stacking.session import StackSession

    session = StackSession(size)
    joining = copy.copy(launcher)
    joining.task_function = session.task
    try:
        returns = list(run_jobs(joining))
    finally:
        session.finish()
    for result in returns:
        if result.status is JobStatus.COMPLETED:
            result.return_value = session.final(result.return_value)
    return returns
