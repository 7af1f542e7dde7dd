"""A stack's checkpoints stay consistent when SIGTERM or SIGUSR2 (SLURM's requeue) arrives.

A stack's replicas each write their own `last.pt` after an epoch, in the background. Stopped
between two of those writes, they would resume from different epochs and could no longer
train as one stack. While a stack trains, these signals first wait for the checkpoint writes
in flight, and a signal that arrives while the epoch's checkpoints are being handed to the
writers waits until all of them are; then the handler that was there before (the default
termination, or submitit's requeue) gets it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class CheckpointGuard:
    def __init__(self, wait_for_writes: Callable[[], None]) -> None:
        self.wait_for_writes = wait_for_writes
        self.handing_over = False
        self.pending: list[tuple[int, FrameType | None]] = []
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> CheckpointGuard:
        if threading.current_thread() is threading.main_thread():  # else signals cannot be set
            self.previous = {sig: signal.signal(sig, self.handle) for sig in SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.handing_over:
            self.pending.append((signum, frame))
        else:
            self.deliver(signum, frame)

    def deliver(self, signum: int, frame: FrameType | None) -> None:
        self.wait_for_writes()
        handler = self.previous.get(signum, signal.SIG_DFL)
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            self.__exit__()
            os.kill(os.getpid(), signum)

    @contextmanager
    def handing_over_checkpoints(self) -> Iterator[None]:
        """Signals wait until every replica's checkpoint of the epoch has been handed over."""
        self.handing_over = True
        try:
            yield
        finally:
            self.handing_over = False
            pending, self.pending = self.pending, []
            for signum, frame in pending:
                self.deliver(signum, frame)
