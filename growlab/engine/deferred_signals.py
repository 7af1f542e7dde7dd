"""Hold back SIGTERM and SIGUSR2 (SLURM's requeue signal) while a stack writes its checkpoints.

A stack's replicas each write their own `last.pt` after an epoch. Stopped between two of those
writes, they would resume from different epochs and could no longer train as one stack. While
the block runs, these signals are only noted; at its end the original handlers (the default
termination, or submitit's requeue) get them, with every checkpoint of the epoch on disk.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


@contextmanager
def deferred_signals() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set in the main thread
        return
    pending: list[int] = []

    def note(signum: int, frame: Any) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(pending):
            os.kill(os.getpid(), sig)
