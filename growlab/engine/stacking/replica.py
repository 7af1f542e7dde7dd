"""A member of a stack of seeds: its run, its own global RNG and log files, and whether a
group of runs can train as one stack at all (growlab.engine.stacking.lockstep drives them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import torch

from growlab.engine.progress import RunProgress
from growlab.engine.stacking import replica_logs
from growlab.engine.stacking.clock import StackClock
from growlab.engine.stacking.replica_logs import LogFile
from growlab.growth.families import family_of, model_config

if TYPE_CHECKING:
    from growlab.engine.loop import Run


class ReplicaRng:
    """A replica's own global torch RNG state (CPU, and CUDA once initialised)."""

    def __init__(self) -> None:
        self.cpu: torch.Tensor | None = None
        self.cuda: list[torch.Tensor] | None = None

    @contextmanager
    def active(self) -> Iterator[None]:
        saved_cpu = torch.get_rng_state()
        saved_cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        if self.cpu is not None:
            torch.set_rng_state(self.cpu)
        if self.cuda is not None and saved_cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)
        try:
            yield
        finally:
            self.cpu = torch.get_rng_state()
            if torch.cuda.is_initialized():
                self.cuda = torch.cuda.get_rng_state_all()
            torch.set_rng_state(saved_cpu)
            if saved_cuda is not None:
                torch.cuda.set_rng_state_all(saved_cuda)


class Replica:
    """A member of a stack: its run, random state and log files, and how it ended."""

    def __init__(
        self,
        run: Run,
        rng: ReplicaRng,
        log_files: list[LogFile] | None = None,
        setup_s: float = 0.0,
    ) -> None:
        self.run, self.rng = run, rng
        self.log_files = log_files or []
        self.setup_s = setup_s  # its own seconds before the stack (building its run)
        self.index = 0  # its place in the stack
        self.clock: StackClock | None = None
        self.summary: dict[str, Any] | None = None

    def call(self, method: Callable[..., Any], *args: Any) -> Any:
        """A step of this replica alone: its RNG, its log lines, its time."""
        token = replica_logs.active.set((self.index, int(self.run.cfg.seed)))
        timing = nullcontext() if self.clock is None else self.clock.own_step(self.index)
        try:
            with self.rng.active(), timing:
                return method(*args)
        finally:
            replica_logs.active.reset(token)


class QuietProgress(RunProgress):
    """A replica's epochs show on the stack's one progress bar."""

    def __init__(self) -> None:
        self.bar = None

    def update(self, stage: int, n_stages: int, depth: int, epoch: int, loss: float) -> None:
        pass


def unstackable(runs: list[Run]) -> str | None:
    """Why these runs cannot train as one stack, or None."""
    if len(runs) < 2:
        return "a stack needs at least two runs"
    model = model_config(runs[0].cfg.model)
    reason = family_of(model).unstackable(model)
    if reason is not None:
        return f"model={model['name']}: {reason}"
    if float(model.get("dropout", 0.0)) > 0:
        return (
            "model.dropout > 0: a stack cannot draw each replica's dropout masks as its solo "
            "run does"
        )
    positions = {_position(run) for run in runs}
    if len(positions) > 1:
        return f"their checkpoints stand at different points {sorted(positions)}"
    return None


def _position(run: Run) -> tuple[int, int, bool]:
    if run.last is None:
        return (0, 0, False)
    progress = run.last["progress"]
    return (progress["stage"], progress["epoch"], progress["current"] is not None)
