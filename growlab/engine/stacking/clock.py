"""Each replica's share of a stack's wall time.

A stack runs one thing at a time: a replica's own step (its growth, stage metrics,
checkpoints, or its whole solo run when the stack falls back to one by one), or work shared by
the replicas still in the stack (an epoch, a validation pass). A replica's clock advances with
the real clock during its own steps, by 1/n of it during shared work among n replicas, and not
at all during another replica's step; so the replicas' wall times add up to the stack's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager


class StackClock:
    def __init__(self, seconds: Mapping[int, float]) -> None:
        """`seconds`: each replica's (by index) before the stack started."""
        self.seconds = dict(seconds)
        self.shared_by: set[int] = set(self.seconds)
        self.owner: int | None = None  # the replica whose own step runs, None: shared work
        self.last = time.perf_counter()

    def _advance(self) -> None:
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        if self.owner is not None:
            self.seconds[self.owner] += elapsed
        elif self.shared_by:
            for index in self.shared_by:
                self.seconds[index] += elapsed / len(self.shared_by)

    def read(self, index: int) -> float:
        """Replica `index`'s seconds so far."""
        self._advance()
        return self.seconds[index]

    def reader(self, index: int) -> Callable[[], float]:
        return lambda: self.read(index)

    def total(self) -> float:
        """The stack's seconds so far: its replicas' added up."""
        self._advance()
        return sum(self.seconds.values())

    @contextmanager
    def own_step(self, index: int) -> Iterator[None]:
        self._advance()
        previous, self.owner = self.owner, index
        try:
            yield
        finally:
            self._advance()
            self.owner = previous

    def share_among(self, replicas: Iterable[int]) -> None:
        """From now on, shared work is split among these replicas."""
        self._advance()
        self.shared_by = set(replicas)
