"""Each replica of a stack logs into its own run's log file, and its lines say its seed.

Hydra gives every job a log file (`<run dir>/<job name>.log`), attached to the root logger
while the job's task runs. A stack trains inside its last job's task, so while it trains the
jobs' Hydra file handlers are set aside and each replica gets a handler on its own file that
takes its own lines and the stack's shared ones.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# (index in the stack, seed) of the replica whose step is running (None: the stack's code).
active: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "growlab_replica", default=None
)


@dataclass
class LogFile:
    path: str
    formatter: logging.Formatter | None


def job_log_files(run_dir: Path) -> list[LogFile]:
    """The root logger's files inside `run_dir` (Hydra's job log), while the job runs."""
    root = Path(run_dir).resolve()
    return [
        LogFile(h.baseFilename, h.formatter)
        for h in logging.getLogger().handlers
        if isinstance(h, logging.FileHandler) and root in Path(h.baseFilename).resolve().parents
    ]


class _SeedPrefix(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        replica = active.get()
        if replica is not None and not getattr(record, "growlab_prefixed", False):
            record.msg = f"[seed {replica[1]}] {record.msg}"
            record.growlab_prefixed = True
        return True


class _OwnLines(logging.Filter):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        replica = active.get()
        return replica is None or replica[0] == self.index


@contextmanager
def replica_logs(files: dict[int, list[LogFile]]) -> Iterator[None]:
    """While a stack trains: each replica's log files (by index in the stack) take its own
    lines and the stack's shared ones."""
    root, growlab = logging.getLogger(), logging.getLogger("growlab")
    paths = {f.path for fs in files.values() for f in fs}
    set_aside = [
        h for h in root.handlers if isinstance(h, logging.FileHandler) and h.baseFilename in paths
    ]
    for handler in set_aside:
        root.removeHandler(handler)
    prefix = _SeedPrefix()
    growlab.addFilter(prefix)
    own: list[logging.Handler] = []
    for index, log_files in files.items():
        for log_file in log_files:
            handler = logging.FileHandler(log_file.path, mode="a")
            if log_file.formatter is not None:
                handler.setFormatter(log_file.formatter)
            handler.addFilter(_OwnLines(index))
            root.addHandler(handler)
            own.append(handler)
    try:
        yield
    finally:
        growlab.removeFilter(prefix)
        for handler in own:
            root.removeHandler(handler)
            handler.close()
        for handler in set_aside:
            root.addHandler(handler)
